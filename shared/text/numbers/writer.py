"""Numbers as Vietnamese writes them, from a recogniser's spoken words, with word ranges kept.

`NumberWriter.write(["giá", "hai", "trăm", "nghìn", "đồng"])` gives the spans "giá" [0],
"200.000" [1-3], "đồng" [4]: every input word lies in exactly one span, in order, so a caller
can give each written token the times of the words it came from.

Only runs of words the number grammar knows ("hai", "trăm", "tháng", "phần", "ki", "lô"...) are
read, each on its own: the grammar (itntext's compiled FST, see `tagger`) is slow on long
text, and a run is short and often repeated, so it is read once and remembered. Words it cannot
be part of (names, English, digits, capitals) pass through as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from shared.text.numbers.align import Piece, align_tokens, place
from shared.text.numbers.fixes import (
    birth_order_name,
    fixed_minutes,
    joined_minutes,
    keeps_words,
    token_end,
)
from shared.text.numbers.tagger import Tagger, Token, grammar_words, library_name
from shared.text.numbers.words import (
    CONTEXT_WORDS,
    IDIOMS,
    NUMBER_WORDS,
    digit_before_unit,
    tagger_words,
)
from shared.text.numbers.written import Style, write
from shared.text.numbers.years import spoken_year, with_year

_MAX_RUN = 24  # the grammar's time grows faster than its input
_BEFORE_YEAR = NUMBER_WORDS | {"hàng", "vài", "mấy"}
# Words a run may open with: the grammar's unit words ("ki", "ra", "đề") only ever follow one.
_OPENERS = NUMBER_WORDS | {"ngày", "mồng", "mùng", "tháng", "thứ", "hàng", "vài", "mỗi", "từng"}
_OPENERS |= {"mấy"}


@dataclass(frozen=True, slots=True)
class Span:
    text: str  # the written form ("15", "12,5", "10:30", "200.000") or the word unchanged
    first: int  # index of the first input word it was made from
    last: int  # index of the last input word (inclusive)


class NumberWriter:
    """Writes the numbers in a recogniser's word sequence; loads the grammar once."""

    def __init__(self, decimal: str = ",", thousands: str = ".") -> None:
        self._style = Style(decimal=decimal, thousands=thousands)
        self._tagger = Tagger()
        self._vocabulary = grammar_words() | NUMBER_WORDS | CONTEXT_WORDS
        self._read = lru_cache(maxsize=8192)(self._read_run)
        self.name = f"{library_name()} + fixes"

    def write(self, words: Sequence[str]) -> list[Span]:
        words = list(words)
        names = [birth_order_name(words, at) for at in range(len(words))]
        readable = [ok and not name for ok, name in zip(self._readable(words), names, strict=True)]
        spans: list[Span] = []
        start = 0
        while start < len(words):
            if not readable[start] or words[start] not in _OPENERS:
                word = words[start].title() if names[start] else words[start]  # "ông Mười"
                spans.append(Span(word, start, start))
                start += 1
                continue
            stop = start + 1
            while stop < len(words) and readable[stop] and stop - start < _MAX_RUN:
                stop += 1
            run = tuple(words[start:stop])
            pieces = self._read(run) if NUMBER_WORDS.intersection(run) else _as_spoken(run)
            spans += [Span(text, start + a, start + b) for text, a, b in pieces]
            start = stop
        return spans

    def _readable(self, words: list[str]) -> list[bool]:
        """Which words may be part of a number: known to the grammar and not in a set phrase."""
        readable = [word in self._vocabulary for word in words]
        for start in range(len(words)):
            for idiom in IDIOMS:
                if tuple(words[start : start + len(idiom)]) == idiom:
                    readable[start : start + len(idiom)] = [False] * len(idiom)
        return readable

    def _read_run(self, words: tuple[str, ...]) -> tuple[Piece, ...]:
        """One run of grammar words, written: years the grammar misses first, then the rest."""
        for at, word in enumerate(words):
            if word not in ("năm", "nghìn", "ngàn"):
                continue
            if word != "năm" and at and words[at - 1] in _BEFORE_YEAR:
                continue
            year = spoken_year(words[at:], self._tagger.tag)
            if year:
                end = at + year[-1][2] + 1
                head = self._read(words[:at]) if at else ()
                tail = self._read(words[end:]) if end < len(words) else ()
                return with_year(head, list(_shift(year, at))) + _shift(tail, end)
        return tuple(self._tagged(words))

    def _tagged(self, words: tuple[str, ...]) -> list[Piece]:
        fixed = tagger_words(words)
        aligned = align_tokens(fixed, self._tagger.tag)
        if aligned is None:
            return list(_as_spoken(words))
        pieces: list[Piece] = []
        for token, first, last in joined_minutes(aligned):
            around = (words[first - 1] if first else "", "".join(words[last + 1 : last + 2]))
            token = fixed_minutes(token, fixed[first : last + 1], self._tagger.tag)
            piece = self._token(token, words[first : last + 1], fixed[first : last + 1], around)
            pieces += _shift(piece, first)
        return pieces

    def _token(
        self, token: Token, spoken: tuple[str, ...], fixed: tuple[str, ...], around: tuple[str, str]
    ) -> tuple[Piece, ...]:
        """One recognised token written, or the words kept where a rule says so."""
        if token.kind == "name":
            return ((digit_before_unit(spoken[0], around[1]) or spoken[0], 0, 0),)
        end = token_end(token, fixed, self._tagger.tag)
        if end is not None:
            return self._read(spoken[:end]) + _shift(self._read(spoken[end:]), end)
        written = None if keeps_words(token, spoken, around) else write(token, spoken, self._style)
        if written is not None:
            return tuple(place(written, spoken, NUMBER_WORDS))
        if token.kind == "date" or len(spoken) == 1:
            return _as_spoken(spoken)
        # Keep the first word and read the others again ("năm chín lăm": năm, 95).
        return ((spoken[0], 0, 0),) + _shift(self._read(spoken[1:]), 1)


def _as_spoken(words: tuple[str, ...]) -> tuple[Piece, ...]:
    return tuple((word, index, index) for index, word in enumerate(words))


def _shift(pieces: Sequence[Piece], offset: int) -> tuple[Piece, ...]:
    return tuple((text, first + offset, last + offset) for text, first, last in pieces)
