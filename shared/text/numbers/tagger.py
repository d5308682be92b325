"""The spoken-number grammar: itntext's compiled Vietnamese tagger FST, run on short word runs.

itntext ships the Vietnamese ITN grammar (a port of NeMo's) compiled to OpenFST files that
kaldifst runs without pynini. Only its tagger is used: it reads "mười lăm tháng tám" and says
`date { day: "15" month: "8" }`; writing that down (separators, units, what stays a word) is
ours, in `written`. The tagger is fast on short input (well under a millisecond) and slow
on long input (about 0.8 s for 1,400 words), so it only ever sees the short runs of number words
`numbers` cuts out, and remembers what it said for each run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata, resources

from itntext.fst_processor import FstProcessor, TokenParser

Fields = Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Token:
    """One thing the tagger recognised: `kind` is "name" for a plain word, else a semiotic class
    ("cardinal", "decimal", "date", "time", "money", "measure", "telephone", "ordinal", ...)."""

    kind: str
    fields: Fields

    @property
    def word(self) -> str | None:
        """The word itself for a plain-word token."""
        value = self.fields.get("name")
        return value if isinstance(value, str) else None


def cardinal_value(tokens: Sequence[Token]) -> int | None:
    """The value of a reading that is exactly one non-negative whole number, else None."""
    if len(tokens) != 1 or tokens[0].kind != "cardinal" or "negative" in tokens[0].fields:
        return None
    value = tokens[0].fields.get("integer")
    return int(value) if isinstance(value, str) and value.strip().isdigit() else None


def library_name() -> str:
    return f"itntext {metadata.version('itntext')}"


class Tagger:
    """The library's Vietnamese ITN tagger with a memory of the runs it has already read."""

    def __init__(self, cache_size: int = 4096) -> None:
        self._fst = FstProcessor(lang="vi", operator="itn")
        self.tag = lru_cache(maxsize=cache_size)(self._tag)

    def _tag(self, words: tuple[str, ...]) -> tuple[Token, ...]:
        tagged = self._fst.tag(" ".join(words))
        if not tagged:
            return ()
        parser = TokenParser()  # one per call: the parser keeps its position, threads may share us
        parser(tagged)
        tokens = []
        for group in parser.parse():
            inner = group.get("tokens")
            if not isinstance(inner, dict) or len(inner) != 1:
                return ()
            ((kind, fields),) = inner.items()
            if kind == "name":
                fields = {"name": fields}
            tokens.append(Token(kind, dict(fields) if isinstance(fields, dict) else {}))
        return tuple(tokens)


def grammar_words() -> frozenset[str]:
    """Every syllable the grammar's spoken side uses (numbers, units, currencies, months, time):
    the words a run of number words may contain. Read from the library's own data so that the
    two never disagree."""
    root = resources.files("itntext") / "grammars" / "inverse_text_normalization" / "vi" / "data"
    words: set[str] = set()
    tables: Sequence[str] = (
        "measurements.tsv",
        "currency.tsv",
        "magnitudes.tsv",
        "months.tsv",
        "numbers/digit.tsv",
        "numbers/zero.tsv",
        "numbers/teen.tsv",
        "numbers/ties.tsv",
        "numbers/hundred.tsv",
        "numbers/thousands.tsv",
        "ordinals/digit.tsv",
        "time/hours.tsv",
    )
    for name in tables:
        for line in (root / name).read_text(encoding="utf-8").splitlines():
            for column in line.split("\t"):
                words.update(w for w in column.split() if w.isalpha() and w.islower())
    return frozenset(words)
