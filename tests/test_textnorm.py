"""Scoring normalisation: tones kept, punctuation and case folded, numbers read in Vietnamese."""

from __future__ import annotations

import unicodedata

import pytest

from shared.speech.textnorm import normalize, number_to_words, wer_cer


def test_punctuation_case_and_spaces_fold_but_tones_stay() -> None:
    assert normalize("  Cảm ơn, rất   NHIỀU!  “Tôi” đã… ") == "cảm ơn rất nhiều tôi đã"
    assert normalize("ma má mà mả mã mạ") == "ma má mà mả mã mạ"


def test_decomposed_input_equals_precomposed() -> None:
    decomposed = unicodedata.normalize("NFD", "Tiếng Việt")
    assert decomposed != "Tiếng Việt"
    assert normalize(decomposed) == "tiếng việt"


def test_symbols_are_removed() -> None:
    assert normalize("giá + thuế = 100$ #tag") == "giá thuế 100 tag"


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "không"),
        (5, "năm"),
        (10, "mười"),
        (11, "mười một"),
        (14, "mười bốn"),
        (15, "mười lăm"),
        (16, "mười sáu"),
        (20, "hai mươi"),
        (21, "hai mươi mốt"),
        (24, "hai mươi bốn"),
        (25, "hai mươi lăm"),
        (55, "năm mươi lăm"),
        (100, "một trăm"),
        (101, "một trăm linh một"),
        (105, "một trăm linh năm"),
        (110, "một trăm mười"),
        (115, "một trăm mười lăm"),
        (121, "một trăm hai mươi mốt"),
        (999, "chín trăm chín mươi chín"),
        (1000, "một nghìn"),
        (1005, "một nghìn không trăm linh năm"),
        (1050, "một nghìn không trăm năm mươi"),
        (2024, "hai nghìn không trăm hai mươi bốn"),
        (9999, "chín nghìn chín trăm chín mươi chín"),
        (15000, "mười lăm nghìn"),
        (1_000_000, "một triệu"),
        (2_500_000, "hai triệu năm trăm nghìn"),
    ],
)
def test_number_to_words(n: int, words: str) -> None:
    assert number_to_words(n) == words


def test_numbers_in_text_compare_equal_to_words() -> None:
    assert normalize("Năm 2024 có 16 đội.", numbers=True) == normalize(
        "năm hai nghìn không trăm hai mươi bốn có mười sáu đội"
    )
    assert normalize("Tôi 16 tuổi") == "tôi 16 tuổi"  # off by default


def test_separators_percent_and_leading_zeros() -> None:
    assert normalize("1.000.000 đồng", numbers=True) == "một triệu đồng"
    assert normalize("tăng 5%", numbers=True) == "tăng năm phần trăm"
    assert normalize("1,5 lít", numbers=True) == "một phẩy năm lít"
    assert normalize("gọi 0912", numbers=True) == "gọi không chín một hai"


def test_spoken_variants_fold_only_inside_numbers() -> None:
    assert normalize("một trăm lẻ năm", numbers=True) == "một trăm linh năm"
    assert normalize("hai mươi tư", numbers=True) == "hai mươi bốn"
    assert normalize("ba ngàn", numbers=True) == "ba nghìn"
    assert normalize("số lẻ và tư nhân", numbers=True) == "số lẻ và tư nhân"


def test_wer_cer() -> None:
    assert wer_cer(["tôi xin một tách cà phê"], ["Tôi xin một tách cà phê."]) == (0.0, 0.0)
    wer, cer = wer_cer(["tôi có mười sáu tuổi"], ["tôi có 16 tuổi"])
    assert wer == pytest.approx(0.4) and cer > 0
    assert wer_cer(["tôi có mười sáu tuổi"], ["tôi có 16 tuổi"], numbers=True) == (0.0, 0.0)
    # Corpus-level: errors over all reference words, not a mean of per-line rates.
    assert wer_cer(["a b c d", "e"], ["a b c d", "x"])[0] == pytest.approx(0.2)
    assert wer_cer(["một hai"], [""])[0] == pytest.approx(1.0)


def test_wer_cer_rejects_mismatched_lists() -> None:
    with pytest.raises(ValueError):
        wer_cer(["a"], [])
    with pytest.raises(ValueError):
        wer_cer([], [])
