"""Years the grammar misses or misreads, found before it reads a run.

- spoken in two-digit groups after "năm": "năm mười chín bảy lăm" is năm 1975;
- round years it merges with the year word: "năm hai nghìn" is năm 2000, not 52,000;
- the leading "một" dropped, as people say it: "nghìn chín trăm bảy mươi lăm" is 1975.

A year found here joins a date just before it ("tháng 8/2000"), as the grammar's own dates do.
"""

from __future__ import annotations

from shared.text.numbers.align import Piece, TagFn
from shared.text.numbers.tagger import cardinal_value
from shared.text.numbers.words import DIGITS, MAGNITUDES, NUMBER_WORDS


def spoken_year(words: tuple[str, ...], tag: TagFn) -> list[Piece] | None:
    """A year the grammar misses, read from the start of `words`, or None."""
    return _grouped_year(words, tag) or _merged_year(words, tag) or _year_without_one(words, tag)


def with_year(head: tuple[Piece, ...], year: list[Piece]) -> tuple[Piece, ...]:
    """A year found by the rules above joins a date just before it ("tháng 8" + "năm 2000" is
    "tháng 8/2000"; "15/8" + "năm 2000" is "15/8/2000"), as the grammar's own dates are written."""
    if len(year) != 2 or not head or not head[-1][0].replace("/", "").isdigit():
        return head + tuple(year)
    text, first, _ = head[-1]
    if "/" in text or (len(head) > 1 and head[-2][0] == "tháng"):
        return head[:-1] + ((f"{text}/{year[1][0]}", first, year[1][2]),)
    return head + tuple(year)


def _merged_year(words: tuple[str, ...], tag: TagFn) -> list[Piece] | None:
    """After "năm", "hai nghìn" is the year 2000: the grammar reads "năm hai nghìn" as 52,000."""
    if words[:1] != ("năm",) or words[1:2] == () or words[1] not in DIGITS:
        return None
    if words[2:3] not in (("nghìn",), ("ngàn",)):
        return None
    stop = _extent(words, NUMBER_WORDS)
    if stop > 9:  # "năm hai nghìn không trăm hai mươi tư" is the longest year
        return None
    merged = tag(words[:stop])
    if not merged or merged[0].kind != "cardinal":
        return None
    value = cardinal_value(tag(words[1:stop]))
    if value is None or not 1000 <= value < 3000:
        return None
    return [("năm", 0, 0), (str(value), 1, stop - 1)]


def _grouped_year(words: tuple[str, ...], tag: TagFn) -> list[Piece] | None:
    """The year word, then the century and the year in two groups: "năm mười chín bảy lăm"."""
    if words[:1] != ("năm",) or words[1:2] not in (("mười",), ("hai",)):
        return None
    stop = _extent(words, NUMBER_WORDS - MAGNITUDES)
    if not 4 <= stop <= 6:  # two words of century, one to three of year
        return None
    for split in range(3, stop):
        century = cardinal_value(tag(words[1:split]))
        rest = cardinal_value(tag(words[split:stop]))
        if century is not None and 10 <= century <= 20 and rest is not None and rest >= 10:
            return [("năm", 0, 0), (str(century * 100 + rest), 1, stop - 1)]
    return None


def _year_without_one(words: tuple[str, ...], tag: TagFn) -> list[Piece] | None:
    """A year with its leading "một" dropped, as people say it: "nghìn chín trăm bảy mươi lăm"."""
    if words[:1] not in (("nghìn",), ("ngàn",)) or words[2:3] != ("trăm",):
        return None
    words = words[: min(_extent(words, NUMBER_WORDS), 8)]
    tokens = tag(("một", *words))
    if not tokens or tokens[0].kind != "cardinal":
        return None
    value = cardinal_value(tokens[:1])
    if value is None or not 1000 <= value < 2000:
        return None
    if any(t.kind != "name" for t in tokens[1:]):
        return None
    return [(str(value), 0, len(words) - len(tokens[1:]) - 1)]


def _extent(words: tuple[str, ...], allowed: frozenset[str]) -> int:
    """Where the words from the second on stop being `allowed`."""
    stop = 1
    while stop < len(words) and words[stop] in allowed:
        stop += 1
    return stop
