"""Which spoken words each recognised token, and each written token, came from.

The tagger's output names plain words but not how many words a number consumed, and a written
number may come out as several tokens ("5 triệu đồng"). Word times are carried across through
these ranges, so they are worked out exactly here rather than guessed from string similarity:
plain words anchor the tagger's tokens, and literal words anchor the written ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from shared.text.numbers.tagger import Token

# (written text, first word, last word), word indices relative to the run being read.
Piece = tuple[str, int, int]
TagFn = Callable[[tuple[str, ...]], tuple[Token, ...]]


def align_tokens(words: tuple[str, ...], tag: TagFn) -> list[tuple[Token, int, int]] | None:
    """Each token of `tag(words)` with the first and last word it was read from, or None where
    the tokens cannot be laid over the words exactly (the caller then keeps the words)."""
    return _align(words, tag(words), 0, tag)


def _align(
    words: tuple[str, ...], tokens: Sequence[Token], pos: int, tag: TagFn
) -> list[tuple[Token, int, int]] | None:
    if not tokens:
        return [] if pos == len(words) else None
    token, rest = tokens[0], tokens[1:]
    if token.kind == "name":
        if pos >= len(words) or words[pos] != token.word:
            return None
        after = _align(words, rest, pos + 1, tag)
        return None if after is None else [(token, pos, pos), *after]
    for end in _token_ends(words, pos, token, rest, tag):
        after = _align(words, rest, end, tag)
        if after is not None:
            return [(token, pos, end - 1), *after]
    return None


def _token_ends(
    words: tuple[str, ...], pos: int, token: Token, rest: Sequence[Token], tag: TagFn
) -> Iterator[int]:
    """Where a number token may stop: fixed by the count of plain words after it when they are
    all plain, else each end, shortest first (short readings are cheap), at which the words
    read as exactly this token; "mười bảy giờ ba mươi" and "... phút" both read 17:30, and the
    caller tries the next end when the rest does not fit."""
    last = len(words) - len(rest)
    if all(t.kind == "name" for t in rest):
        return iter([last] if last > pos else [])
    return (end for end in range(pos + 1, last + 1) if tag(words[pos:end]) == (token,))


def place(written: Sequence[str], spoken: Sequence[str], numeric: frozenset[str]) -> list[Piece]:
    """Lay written tokens over the spoken words they came from (indices relative to `spoken`).

    Written tokens that are spoken words ("tháng", "đồng", "triệu") are matched to the next such
    word; what lies between two anchors is paired up as a whole, split once more where it is
    one number then one unit ("15 km" from "mười lăm ki lô mét"). Where the two sides cannot be
    paired, the whole token becomes one written span over all its words.
    """
    pieces: list[Piece] = []
    pending: list[str] = []
    pos = 0
    for text in written:
        at = _find(spoken, text, pos)
        if at is None:
            pending.append(text)
            continue
        gap = _gap(pending, spoken, pos, at, numeric)
        if gap is None:
            return [(" ".join(written), 0, len(spoken) - 1)]
        pieces += [*gap, (text, at, at)]
        pending, pos = [], at + 1
    tail = _gap(pending, spoken, pos, len(spoken), numeric)
    if tail is None:
        return [(" ".join(written), 0, len(spoken) - 1)]
    return pieces + tail


def _find(spoken: Sequence[str], text: str, start: int) -> int | None:
    for index in range(start, len(spoken)):
        if spoken[index] == text:
            return index
    return None


def _gap(
    written: list[str], spoken: Sequence[str], start: int, stop: int, numeric: frozenset[str]
) -> list[Piece] | None:
    if not written and start == stop:
        return []
    if not written or start == stop:
        return None
    if len(written) == 2 and written[0][-1:].isdigit() and not written[1][:1].isdigit():
        split = start
        while split < stop and spoken[split] in numeric:
            split += 1
        if start < split < stop:
            return [(written[0], start, split - 1), (written[1], split, stop - 1)]
    return [(" ".join(written), start, stop - 1)]
