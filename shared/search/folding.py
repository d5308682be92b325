"""The words search compares: NFC, lowercase, and a folded twin without diacritics.

Folding is done here, in Python, for both databases rather than by SQLite's ``unicode61
remove_diacritics`` or PostgreSQL's ``unaccent``: Unicode decomposition leaves đ/Đ alone (it is
a letter of its own, not d with a mark), so neither engine folds it the same way by itself, and
one function on both sides of the index (rows written, queries read) cannot drift apart.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Letters and digits; everything else (punctuation, underscore, symbols) separates words. A run
# longer than 64 is cut into pieces of 64, the same way in rows and queries, so no word can
# pass PostgreSQL's limit on a lexeme (2 KB).
WORD = re.compile(r"[^\W_]{1,64}")
FOLD_TABLE = str.maketrans({"đ": "d", "Đ": "d"})


def words(text: str) -> list[str]:
    """The words of ``text`` as the index and queries spell them: NFC, lowercase."""
    return WORD.findall(unicodedata.normalize("NFC", text).lower())


@lru_cache(maxsize=1 << 16)  # a language's words repeat: highlighting folds the same ones
def fold(word: str) -> str:
    """``word`` without tone marks and vowel marks, đ as d: "Đường" -> "duong"."""
    decomposed = unicodedata.normalize("NFD", word.lower().translate(FOLD_TABLE))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", bare)


def is_folded(word: str) -> bool:
    """Typed without diacritics: a user who typed marks wants them matched first."""
    return fold(word) == word
