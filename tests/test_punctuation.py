"""The shipped punctuation and capitals model, through its runtime class."""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
from pathlib import Path

import pytest

from shared.text.punctuation import SHIPPED, PunctuationModel, PunctuationModelError, Restored


@pytest.fixture(scope="module")
def model() -> PunctuationModel:
    return PunctuationModel.load()


def texts(restored: list[Restored]) -> list[str]:
    return [r.text for r in restored]


def test_shipped_files_match_the_card_checksums() -> None:
    card = (SHIPPED / "MODEL_CARD.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"- `([\w.]+)`: `([0-9a-f]{64})`", card))
    assert set(listed) == {"model.onnx", "vocab.json", "manifest.json"}
    for name, digest in listed.items():
        assert hashlib.sha256((SHIPPED / name).read_bytes()).hexdigest() == digest, name
    assert (SHIPPED / "model.onnx").stat().st_size < 30_000_000  # the bound


def test_name_says_which_model(model: PunctuationModel) -> None:
    assert model.name.startswith("vi-punct-4 (") and "MB)" in model.name


def test_places_sentence_start_and_end(model: PunctuationModel) -> None:
    out = model.restore("sáng nay tôi đi hà nội".split())
    assert texts(out) == ["Sáng", "nay", "tôi", "đi", "Hà", "Nội"]
    assert out[-1].punct == "."


def test_acronyms_and_mixed_case_come_from_the_lexicon(model: PunctuationModel) -> None:
    spoken = "đài vtv và ubnd tỉnh quảng ninh đã ký kết hợp tác với iphone".split()
    written = texts(model.restore(spoken))
    assert [written[i] for i in (1, 3, 5, 6, -1)] == ["VTV", "UBND", "Quảng", "Ninh", "iPhone"]


def test_an_unseen_vowelless_token_is_an_abbreviation_but_a_unit_is_not(
    model: PunctuationModel,
) -> None:
    spoken = "chủ tịch hđqt cho biết quãng đường dài ba km".split()
    written = texts(model.restore(spoken))
    assert written[2] == "HĐQT"  # not in the vocabulary: no case from the model
    assert written[-1] == "km"  # a unit the model knows stays as the model writes it


def test_question_mark_on_a_question(model: PunctuationModel) -> None:
    out = model.restore("anh có biết tại sao không".split())
    assert out[-1].punct == "?"


def test_sentence_boundary_inside_a_stream(model: PunctuationModel) -> None:
    spoken = (
        "việt nam là một quốc gia nằm ở phía đông bán đảo đông dương thủ đô của việt nam là hà nội"
    ).split()
    out = model.restore(spoken)
    assert [r.text for r in out if r.text[0].isupper()][:2] == ["Việt", "Nam"]
    assert out[spoken.index("dương")].punct == "."
    assert out[spoken.index("thủ")].text == "Thủ"
    assert out[-1].punct == "."


def test_a_first_word_is_not_a_sentence_on_weak_evidence(model: PunctuationModel) -> None:
    """The shipped model puts a period after "cám" (0.43) and "sáng" (0.57) at the start of
    these: a sentence of one word is kept only when the model is sure of it."""
    thanks = model.restore("cám ơn rất nhiều tôi đã có một chuyến bay tốt đẹp".split())
    assert thanks[0] == Restored("Cám", "") and thanks[1].text == "ơn"
    morning = model.restore("sáng ngày 15 tháng 8 bộ trưởng đến cần thơ".split())
    assert morning[0].punct in ("", ",") and morning[1].text == "ngày"


def test_only_weak_one_word_sentence_ends_are_dropped() -> None:
    """Marks "", ",", ".", "?", "!": a sure one-word sentence stays, a weak one becomes the
    likelier of no mark and comma, and an end after a longer sentence is the model's own."""
    import numpy as np

    from shared.text.punctuation import _no_weak_one_word_sentences

    probabilities = np.array(
        [
            [0.05, 0.05, 0.9, 0.0, 0.0],  # one word, sure: "."
            [0.2, 0.4, 0.4, 0.0, 0.0],  # one word after an end, weak: "," instead
            [0.9, 0.05, 0.05, 0.0, 0.0],
            [0.3, 0.3, 0.4, 0.0, 0.0],  # third word of a sentence: "." stays
            [0.35, 0.25, 0.1, 0.3, 0.0],  # one word, "?" wins at 0.3 < 0.7: no mark
            [0.0, 0.0, 1.0, 0.0, 0.0],
        ]
    )
    logits = np.log(probabilities + 1e-9).astype(np.float32)
    assert _no_weak_one_word_sentences(logits, logits.argmax(-1)).tolist() == [2, 1, 0, 2, 0, 2]


def test_the_last_word_alone_needs_a_sure_end_before_it() -> None:
    import numpy as np

    from shared.text.punctuation import _no_weak_one_word_sentences

    def marks(before_last: list[float]) -> list[int]:
        rows = [[0.9, 0.1, 0.0, 0.0, 0.0], before_last, [0.0, 0.0, 1.0, 0.0, 0.0]]
        logits = np.log(np.array(rows) + 1e-9).astype(np.float32)
        return list(_no_weak_one_word_sentences(logits, logits.argmax(-1)).tolist())

    assert marks([0.3, 0.2, 0.5, 0.0, 0.0]) == [0, 0, 2]  # "gây trơn. Trợt." was weak
    assert marks([0.1, 0.1, 0.8, 0.0, 0.0]) == [0, 2, 2]  # a sure end stays


def test_empty_and_one_token(model: PunctuationModel) -> None:
    assert model.restore([]) == []
    (only,) = model.restore(["xin"])
    assert only == Restored("Xin", only.punct) and only.punct in (".", "?", "!")  # ends a sentence


def test_long_monologue_keeps_every_token(model: PunctuationModel) -> None:
    sentences = [
        "hôm qua chúng tôi đã đến thành phố hồ chí minh để gặp các bạn",
        "ông ấy là giám đốc công ty từ năm ngoái",
        "thời tiết hôm nay rất đẹp nên mọi người đi chơi công viên",
        "chính phủ đã ban hành nghị định mới về giao thông",
        "cô giáo dặn học sinh phải làm bài tập về nhà đầy đủ",
    ]
    rng = random.Random(5)
    spoken: list[str] = []
    while len(spoken) < 10_000:
        spoken += rng.choice(sentences).split()
    spoken = spoken[:10_000]
    out = model.restore(spoken)
    assert len(out) == 10_000
    assert [t.lower() for t in texts(out)] == spoken
    assert sum(r.punct in (".", "?", "!") for r in out) > 100  # sentences found all along


def test_digits_mixed_case_english_and_unknown_tokens_pass(model: PunctuationModel) -> None:
    spoken = ["năm", "2024", "giá", "12,5", "triệu", "lúc", "10:30", "iPhone", "qwzx", "email"]
    out = model.restore(spoken)
    assert len(out) == len(spoken)
    for i in (1, 3, 6, 7):  # digits, or a case the recogniser already wrote: unchanged
        assert out[i].text == spoken[i]
    assert [t.lower() for t in texts(out)] == [t.lower() for t in spoken]


def test_output_is_deterministic(model: PunctuationModel) -> None:
    spoken = "tôi tên là nam tôi sống ở đà nẵng bạn tên là gì".split() * 30
    assert model.restore(spoken) == model.restore(spoken)


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "vi-punct"
    shutil.copytree(SHIPPED, target)
    return target


def test_corrupt_model_file_is_a_clear_error(tmp_path: Path) -> None:
    target = _copy(tmp_path)
    data = bytearray((target / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (target / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(PunctuationModelError, match="sha256 does not match"):
        PunctuationModel.load(target)


def test_unloadable_model_with_matching_manifest_is_a_clear_error(tmp_path: Path) -> None:
    target = _copy(tmp_path)
    (target / "model.onnx").write_bytes(b"not an onnx graph")
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["sha256"]["model.onnx"] = hashlib.sha256(b"not an onnx graph").hexdigest()
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PunctuationModelError, match="model.onnx"):
        PunctuationModel.load(target)


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PunctuationModelError, match="unusable"):
        PunctuationModel.load(tmp_path / "nowhere")
