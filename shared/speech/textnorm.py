"""Vietnamese-aware text normalisation for scoring transcripts (WER/CER).

Scores only mean something when reference and hypothesis are normalised the same way. Whisper
writes punctuation, capitals and digits; the reference sets are lowercase words with no
punctuation. We fold case and drop punctuation/symbols but keep diacritics, because in Vietnamese
they carry the tones and distinguish words ("ma", "má", "mà", "mả", "mã", "mạ").

Number normalisation is optional because it changes what is measured: with it, "16" and
"mười sáu" compare equal, which is what a reader cares about, but it hides a formatting choice.
"""

from __future__ import annotations

import re
import unicodedata

import jiwer

_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_SCALES = ("", "nghìn", "triệu", "tỷ")
_NUMBER_WORDS = frozenset(_DIGITS) | {"mười", "mươi", "mốt", "lăm", "linh", "trăm", *_SCALES[1:]}
# Regional or spoken variants folded to one spelling, only right after a number word, so that
# "một trăm lẻ năm" and "105" agree without touching "lẻ" (odd) or "tư" (private) elsewhere.
_VARIANTS = {"lẻ": "linh", "ngàn": "nghìn", "tư": "bốn", "nhăm": "lăm", "tỉ": "tỷ"}
_VARIANT_AFTER = {"lẻ": {"trăm", "nghìn"}, "tư": {"mươi"}, "nhăm": {"mươi"}}

_THOUSANDS = re.compile(r"\d{1,3}(?:\.\d{3})+(?!\d)")
_DECIMAL = re.compile(r"(\d+),(\d+)")
_PERCENT = re.compile(r"(\d)\s*%")
_DIGIT_RUN = re.compile(r"\d+")


def normalize(text: str, numbers: bool = False) -> str:
    """NFC, lowercase, punctuation and symbols to spaces, whitespace collapsed; tones kept."""
    text = unicodedata.normalize("NFC", text).lower()
    if numbers:
        text = _expand_numbers(text)
    text = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    words = text.split()
    if numbers:
        words = _fold_variants(words)
    return " ".join(words)


def number_to_words(n: int) -> str:
    """Read a non-negative integer the Vietnamese way (northern forms: "linh", "nghìn")."""
    if n < 0:
        raise ValueError("negative numbers are not read")
    if n == 0:
        return _DIGITS[0]
    if n >= 1000 ** len(_SCALES):
        return " ".join(_DIGITS[int(d)] for d in str(n))
    groups: list[int] = []
    while n:
        n, rest = divmod(n, 1000)
        groups.append(rest)
    words: list[str] = []
    top = len(groups) - 1
    for index in range(top, -1, -1):
        group = groups[index]
        if group == 0:
            continue
        words.append(_read_group(group, full=index != top))
        if _SCALES[index]:
            words.append(_SCALES[index])
    return " ".join(words)


def wer_cer(refs: list[str], hyps: list[str], numbers: bool = False) -> tuple[float, float]:
    """Corpus WER and CER (errors over all reference words/characters) after normalisation."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        raise ValueError("nothing to score")
    ref_n = [normalize(r, numbers) for r in refs]
    hyp_n = [normalize(h, numbers) for h in hyps]
    return float(jiwer.wer(ref_n, hyp_n)), float(jiwer.cer(ref_n, hyp_n))


def _read_group(n: int, full: bool) -> str:
    """One 0-999 group; ``full`` reads a leading zero hundred ("không trăm") after a scale."""
    hundreds, rest = divmod(n, 100)
    tens, units = divmod(rest, 10)
    words: list[str] = []
    if hundreds or full:
        words += [_DIGITS[hundreds], "trăm"]
    if tens == 0:
        if units:
            words += ["linh", _DIGITS[units]] if words else [_DIGITS[units]]
        return " ".join(words)
    words += ["mười"] if tens == 1 else [_DIGITS[tens], "mươi"]
    if units == 5:
        words.append("lăm")
    elif units == 1 and tens > 1:
        words.append("mốt")
    elif units:
        words.append(_DIGITS[units])
    return " ".join(words)


def _spell(match: re.Match[str]) -> str:
    digits = match.group(0)
    if len(digits) > 1 and digits.startswith("0"):  # phone numbers, codes: digit by digit
        return " " + " ".join(_DIGITS[int(d)] for d in digits) + " "
    return " " + number_to_words(int(digits)) + " "


def _expand_numbers(text: str) -> str:
    text = _THOUSANDS.sub(lambda m: m.group(0).replace(".", ""), text)
    text = _PERCENT.sub(r"\1 phần trăm", text)
    text = _DECIMAL.sub(r"\1 phẩy \2", text)
    return _DIGIT_RUN.sub(_spell, text)


def _fold_variants(words: list[str]) -> list[str]:
    out: list[str] = []
    for word in words:
        variant = _VARIANTS.get(word)
        if variant and out and out[-1] in _VARIANT_AFTER.get(word, _NUMBER_WORDS):
            word = variant
        out.append(word)
    return out
