"""What a user typed, read as literal words and phrases.

Nothing typed reaches the database as syntax: a query is cut into words (letters and digits
only, see ``folding.words``) and "quoted phrases", and the backends quote every word again when
they write their own expressions. So ``OR``, ``NEAR(``, ``*``, ``-``, ``:`` and SQL are just
words or separators, an unbalanced quote is ignored, and every word must match (AND).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.errors import ErrorCode, SttError
from shared.search.folding import fold, is_folded, words

MAX_QUERY_CHARS = 500
MAX_WORDS = 32
PHRASE = re.compile(r'"([^"]*)"')


@dataclass(frozen=True, slots=True)
class Clause:
    """One word, or a phrase (words in this order, next to each other)."""

    words: tuple[str, ...]

    @property
    def folded(self) -> tuple[str, ...]:
        return tuple(fold(w) for w in self.words)

    @property
    def marked(self) -> tuple[str, ...]:
        """The words typed with diacritics, which an exact match must also have."""
        return tuple(w for w in self.words if not is_folded(w))


@dataclass(frozen=True, slots=True)
class Query:
    clauses: tuple[Clause, ...]

    @property
    def marked(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(w for c in self.clauses for w in c.marked))

    @property
    def folded_words(self) -> frozenset[str]:
        return frozenset(w for c in self.clauses for w in c.folded)


def parse(text: str) -> Query:
    """The query's clauses, or ``invalid_query`` / ``query_too_long`` (400)."""
    if len(text) > MAX_QUERY_CHARS:
        raise SttError(ErrorCode.QUERY_TOO_LONG, f"q is over {MAX_QUERY_CHARS} characters")
    phrases = [tuple(words(p)) for p in PHRASE.findall(text)]
    loose = words(PHRASE.sub(" ", text))  # a stray, unbalanced quote is a separator
    clauses = [Clause(p) for p in phrases if p] + [Clause((w,)) for w in loose]
    unique = tuple(dict.fromkeys(clauses))
    if not unique:
        raise SttError(ErrorCode.INVALID_QUERY, "q has no words to search for")
    if sum(len(c.words) for c in unique) > MAX_WORDS:
        raise SttError(ErrorCode.QUERY_TOO_LONG, f"q has over {MAX_WORDS} words")
    return Query(unique)
