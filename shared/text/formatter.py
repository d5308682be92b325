"""Spoken words in, written tokens out: numbers first, then punctuation and capitals.

Numbers are written before the punctuation model runs because the model was trained on written
text, where a number is one token ("15", "10:30"), not a run of syllables. Each written token
keeps the range of input words it came from; the two stages never add or drop a word, so the
written text always covers exactly what was recognised.

The two switches follow AssemblyAI's names, the hosted API whose options split the same way:
``punctuate`` (punctuation marks) and ``format_text`` (numbers and capitals).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

SENTENCE_ENDS = frozenset(".?!")


class WrittenSpan(Protocol):
    """What the number writer gives per written token (shared.text.numbers.Span)."""

    @property
    def text(self) -> str: ...
    @property
    def first(self) -> int: ...
    @property
    def last(self) -> int: ...


class RestoredToken(Protocol):
    """What the punctuation model gives per token (shared.text.punctuation.Restored)."""

    @property
    def text(self) -> str: ...
    @property
    def punct(self) -> str: ...


class NumberWriting(Protocol):
    name: str

    def write(self, words: Sequence[str]) -> Sequence[WrittenSpan]: ...


class PunctuationRestoring(Protocol):
    name: str

    def restore(self, tokens: Sequence[str]) -> Sequence[RestoredToken]: ...


@dataclass(frozen=True, slots=True)
class FormatOptions:
    punctuate: bool = True
    format_text: bool = True

    @property
    def active(self) -> bool:
        return self.punctuate or self.format_text

    @classmethod
    def of(cls, options: Mapping[str, object]) -> FormatOptions:
        """From a job's stored options: an absent switch is on (written text is the default)."""
        return cls(
            punctuate=options.get("punctuate", True) is not False,
            format_text=options.get("format_text", True) is not False,
        )


@dataclass(frozen=True, slots=True)
class WrittenToken:
    """A written token and the input words ``first``..``last`` (inclusive) it was made from."""

    text: str
    first: int
    last: int

    @property
    def sentence_end(self) -> bool:
        return self.text[-1:] in SENTENCE_ENDS


@dataclass(frozen=True, slots=True)
class _Same:
    text: str
    first: int
    last: int


class Formatter:
    """The number writer and the punctuation model, loaded once per process."""

    def __init__(self, numbers: NumberWriting, punctuation: PunctuationRestoring) -> None:
        self.numbers = numbers
        self.punctuation = punctuation
        self.name = f"{punctuation.name}; {numbers.name}"

    @classmethod
    def load(
        cls, model_dir: Path | None = None, decimal: str = ",", thousands: str = "."
    ) -> Formatter:
        """The shipped models (or ``model_dir``'s punctuation model); raises when unusable."""
        from shared.text.numbers import NumberWriter
        from shared.text.punctuation import PunctuationModel

        return cls(NumberWriter(decimal, thousands), PunctuationModel.load(model_dir))

    def format(self, words: Sequence[str], options: FormatOptions) -> list[WrittenToken]:
        if not words:
            return []
        spans: Sequence[WrittenSpan] = (
            self.numbers.write(words)
            if options.format_text
            else [_Same(w, i, i) for i, w in enumerate(words)]
        )
        restored = self.punctuation.restore([s.text for s in spans])
        tokens: list[WrittenToken] = []
        capital = options.format_text and options.punctuate
        for span, tag in zip(spans, restored, strict=True):
            text = tag.text if options.format_text else span.text
            if capital and (not tokens or tokens[-1].sentence_end):
                text = text[:1].upper() + text[1:]
            mark = tag.punct if options.punctuate else ""
            tokens.append(WrittenToken(text + mark, span.first, span.last))
        if options.punctuate:
            tokens[-1] = _closed(tokens[-1])
        return tokens


def _closed(token: WrittenToken) -> WrittenToken:
    """A transcript ends a sentence: a trailing comma becomes a period, none gets one."""
    if token.sentence_end:
        return token
    text = token.text[:-1] if token.text.endswith(",") else token.text
    return WrittenToken(text + ".", token.first, token.last)
