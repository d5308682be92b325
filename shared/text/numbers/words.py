"""The words a spoken number is made of, and the words around it that change its reading.

`numbers` cuts the recogniser's words into runs of these before the grammar reads them; the
rules in `fixes` and `years` ask the same questions (is this a digit word? a magnitude?).
Also here, three small fixes at the level of single words:

- "mười tư" (14) is not in the grammar: it reads "mười bốn";
- "tấn", "tạ", "yến" are units of mass it does not know: a digit word before one is written as
  a digit, as before "mét";
- set phrases keep their numbers as words ("mười phân vẹn mười", "tỷ lệ", "Ba Tư").
"""

from __future__ import annotations

_DIGIT_WORDS = ("", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy bẩy", "tám", "chín")
DIGIT_VALUE = {word: value for value, words in enumerate(_DIGIT_WORDS) for word in words.split()}
DIGITS = frozenset(DIGIT_VALUE)
NUMBER_WORDS = DIGITS | frozenset(
    {"không", "mười", "mươi", "trăm", "nghìn", "ngàn", "triệu", "tỷ", "tỉ", "linh", "lẻ"}
    | {"mốt", "tư", "lăm", "nhăm", "rưỡi", "phẩy", "chấm", "trừ", "âm"}
)
# Words the grammar reads around numbers, beside the numbers and units themselves.
CONTEXT_WORDS = frozenset(
    {"ngày", "mồng", "mùng", "tháng", "giờ", "phút", "giây", "kém", "thứ", "mấy"}
    | {"km", "kg", "cm", "mm", "m", "ha", "hàng", "vài", "mỗi", "từng", "tấn", "tạ", "yến"}
)
IDIOMS = frozenset(
    {
        ("mười", "phân", "vẹn", "mười"),
        ("chín", "người", "mười", "ý"),
        ("trăm", "người", "như", "một"),
        ("tỷ", "lệ"),
        ("tỉ", "lệ"),
        ("ba", "tư"),  # Persia; 34 is said "ba mươi tư"
        ("gam", "màu"),
    }
)
MAGNITUDES = frozenset({"trăm", "nghìn", "ngàn", "triệu", "tỷ", "tỉ", "phẩy", "chấm"})


def tagger_words(words: tuple[str, ...]) -> tuple[str, ...]:
    """The words as the grammar expects them: "tư" after "mười" becomes "bốn" (one for one, so
    word indices do not move)."""
    return tuple(
        "bốn" if word == "tư" and index and words[index - 1] == "mười" else word
        for index, word in enumerate(words)
    )


_MASSES = frozenset({"tấn", "tạ", "yến"})


def digit_before_unit(word: str, after: str) -> str | None:
    """A digit word before a unit of mass the grammar lacks: "ba tấn" is written "3 tấn" like
    "ba mét" is "3 m"."""
    return str(DIGIT_VALUE[word]) if word in DIGITS and after in _MASSES else None
