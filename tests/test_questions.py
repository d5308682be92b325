"""Question marks from Vietnamese question words, on the tagger's sentence ends."""

from __future__ import annotations

import pytest

from shared.text.punctuation import PunctuationModel, apply_case
from shared.text.questions import is_question, mark_questions


@pytest.mark.parametrize(
    "sentence",
    [
        "anh có đi làm hôm nay không",
        "chị đã ăn cơm chưa",
        "chị cần hỗ trợ gì thêm không ạ",
        "cái này giá bao nhiêu",
        "em đang ở đâu",
        "anh ấy là ai",
        "đơn hàng đến khi nào vậy",
        "anh đi à",
        "đẹp nhỉ",
        "tại sao anh đến muộn",
        "có phải anh gọi hôm qua",
    ],
)
def test_questions_are_questions(sentence: str) -> None:
    assert is_question(sentence.split())


@pytest.mark.parametrize(
    "sentence",
    [
        "tôi không biết gì",  # an indefinite after a negation: nothing
        "chưa rõ anh ấy có đến hay không",  # whether or not: an indirect question
        "hàng hóa đi bằng đường hàng không",  # aviation
        "câu trả lời là không",
        "việc này có đơn giản đâu",  # denies
        "công ty ứng dụng công nghệ ai",  # the acronym
        "sản phẩm có giá phải chăng",  # fair
        "tôi hiểu rồi",
        "không",
    ],
)
def test_statements_stay_statements(sentence: str) -> None:
    assert not is_question(sentence.split())


def test_only_the_ends_of_asking_sentences_change() -> None:
    words = "tôi ổn anh có khỏe không".split()
    assert mark_questions(words, ["", ".", "", "", "", "."]) == ["", ".", "", "", "", "?"]
    statement = "tôi không biết gì".split()
    assert mark_questions(statement, ["", "", "", "!"]) == ["", "", "", "!"]


def test_a_comma_before_the_final_particle_goes() -> None:
    words = "anh đi làm hôm nay không".split()
    assert mark_questions(words, ["", "", "", "", ",", "."])[-2:] == ["", "?"]


def test_a_lone_closing_particle_joins_the_sentence_before() -> None:
    words = "đơn hàng đến khi nào vậy".split()
    assert mark_questions(words, ["", "", "", "", ".", "."]) == ["", "", "", "", "", "?"]


def test_a_sentence_never_starts_with_a_closing_particle() -> None:
    words = "em chào anh ạ em có thể giúp anh".split()
    marks = ["", "", ".", "", "", "", "", "", "."]
    assert mark_questions(words, marks) == ["", "", "", ".", "", "", "", "", "."]
    # "vậy" and "thế" do start sentences ("Vậy thì ..."): the tagger's end stays.
    words = "tôi hiểu rồi vậy thì chúng ta đi".split()
    marks = ["", "", ".", "", "", "", "", "."]
    assert mark_questions(words, marks) == marks


def test_a_denying_dau_closes_the_sentence_before_and_a_closer_takes_no_comma() -> None:
    words = "cái này không khó lắm đâu".split()
    assert mark_questions(words, ["", "", "", "", ".", "."]) == ["", "", "", "", "", "."]
    no_negation = mark_questions("anh ở lại đâu".split(), ["", "", ".", "."])
    assert no_negation[2] == "."  # no negation before it: "đâu" may ask on its own
    words = "gọi cho em theo số này nhé".split()
    assert mark_questions(words, ["", "", "", "", "", ",", "."])[-2:] == ["", "."]


def test_closing_particles_and_we_stay_lowercase_inside_a_sentence() -> None:
    model = PunctuationModel.load()
    out = model.restore("dạ em chào anh ạ em có thể giúp gì cho anh".split())
    assert [r.text for r in out][3:6] == ["anh", "ạ", "Em"] and out[4].punct == "."
    out = model.restore("vâng tôi hiểu rồi chúng tôi sẽ gọi lại".split())
    assert [r.text for r in out][:2] == ["Vâng", "tôi"]
    out = model.restore("dạ anh ơi hôm qua em đã gửi email cho anh rồi".split())
    assert [r.text for r in out][1:3] == ["anh", "ơi"]  # called, not England


def test_the_model_writes_spoken_questions() -> None:
    model = PunctuationModel.load()
    out = model.restore("chị đã ăn cơm chưa".split())
    assert [r.punct for r in out] == ["", "", "", "", "?"]
    out = model.restore("đơn hàng của tôi đến khi nào vậy".split())
    assert [r.text for r in out][-1] == "vậy" and out[-1].punct == "?"


def test_letters_without_a_vowel_are_an_abbreviation_in_capitals() -> None:
    assert apply_case("hđqt", "hđqt", 1, {}) == "HĐQT"
    assert apply_case("smbc", "smbc", 1, {}) == "SMBC"
    assert apply_case("hùng", "hùng", 1, {}) == "Hùng"
    assert apply_case("km", "km", 0, {}) == "km"  # lower stays lower: units are written so
