"""Written transcripts: the shipped formatter on spoken-form text, the speech-side regrouping into
timed sentences, and a worker whose formatting model cannot load (it serves the spoken form)."""

from __future__ import annotations

import random
import subprocess

import pytest

from shared.speech.engines.base import Segment, Word
from shared.speech.written import MAX_SEGMENT_S, write_segments
from shared.text.formatter import FormatOptions, Formatter
from tests.conftest import make_stack, start_worker, stop_worker, wait_for_worker
from tests.test_e2e import submit_file, wait_job

ISSUE_EXAMPLE = (
    "sáng ngày mười lăm tháng tám bộ trưởng nguyễn văn an đến cần thơ dự hội nghị "
    "với hơn ba trăm đại biểu"
)


@pytest.fixture(scope="module")
def formatter() -> Formatter:
    return Formatter.load()


def written(formatter: Formatter, text: str, **options: bool) -> str:
    return " ".join(t.text for t in formatter.format(text.split(), FormatOptions(**options)))


def covered(tokens) -> list[int]:  # noqa: ANN001
    return [i for t in tokens for i in range(t.first, t.last + 1)]


def test_the_issue_example_reads_as_written_vietnamese(formatter):
    text = written(formatter, ISSUE_EXAMPLE)
    assert text.startswith("Sáng") and "ngày 15/8" in text.lower()  # the press's date form
    assert text.endswith("300 đại biểu.")
    assert "Bộ trưởng Nguyễn Văn An" in text and "Cần Thơ" in text


def test_each_switch_alone(formatter):
    marks_only = written(formatter, ISSUE_EXAMPLE, format_text=False)
    assert "15" not in marks_only and marks_only.endswith("đại biểu.")
    assert marks_only.rstrip(".,?!") == marks_only.rstrip(".,?!").lower()
    no_marks = written(formatter, ISSUE_EXAMPLE, punctuate=False)
    assert "300" in no_marks and not any(ch in no_marks for ch in ".,?!")


@pytest.mark.parametrize(
    "text",
    ["", "vâng", "ok em gửi file pdf qua email nhé", "giá là 200 đồng", "Hà Nội đã có 3 người"],
)
def test_awkward_inputs_lose_no_word(formatter, text):
    words = text.split()
    tokens = formatter.format(words, FormatOptions())
    assert covered(tokens) == list(range(len(words)))
    if words:
        assert tokens[-1].text[-1] in ".?!"


def test_a_half_hour_monologue_is_formatted_whole(formatter):
    """About 9,000 words with no pause: nothing lost, bounded segments, and quick."""
    random.seed(7)
    vocabulary = ISSUE_EXAMPLE.split() + "và là của có không người chúng tôi rằng thì".split()
    words = [random.choice(vocabulary) for _ in range(9_000)]
    tokens = formatter.format(words, FormatOptions())
    assert covered(tokens) == list(range(len(words)))
    timed = [Word(w, i * 0.2, i * 0.2 + 0.15) for i, w in enumerate(words)]
    segments = write_segments([Segment(" ".join(words), 0.0, 1800.0, timed)], formatter,
                              FormatOptions())
    assert [w for s in segments for w in s.words] == timed
    assert all(s.end - s.start <= MAX_SEGMENT_S for s in segments)


def test_sentences_become_segments_with_their_word_times(formatter):
    """Two engine chunks whose sentence runs across the cut come back as sentences."""
    first = "hôm nay tôi đi hà nội".split()
    second = "ngày mai tôi về cần thơ".split()
    chunks = [
        Segment(" ".join(first), 0.0, 3.0, [Word(w, i * 0.5, i * 0.5 + 0.4, 0.9)
                                            for i, w in enumerate(first)]),
        Segment(" ".join(second), 3.5, 6.5, [Word(w, 3.5 + i * 0.5, 3.9 + i * 0.5, 0.9)
                                             for i, w in enumerate(second)]),
    ]
    segments = write_segments(chunks, formatter, FormatOptions())
    words = [w for s in segments for w in s.words]
    assert words == [w for c in chunks for w in c.words]
    for seg in segments:
        assert seg.start == seg.words[0].start and seg.end == seg.words[-1].end
        assert seg.spoken_text == " ".join(w.text for w in seg.words)
        assert seg.text[0].isupper() and seg.text[-1] in ".?!,"


def test_a_worker_without_its_formatting_model_serves_the_spoken_form(
    tmp_path, tiny_model_dir, vi_clip
):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "model.onnx").write_bytes(b"not a model")
    stack = make_stack("sqlite", tmp_path, tiny_model_dir, STT_PUNCTUATION_MODEL=str(broken))
    log_path = tmp_path / "worker.log"
    proc: subprocess.Popen = start_worker(stack, log_path)
    try:
        wait_for_worker(stack, proc, log_path)
        from api.app import create_app

        client = create_app(stack.settings).test_client()
        job = wait_job(client, submit_file(client, vi_clip)["id"])
        ready = client.get("/readyz").get_json()
    finally:
        stop_worker(proc)
    assert job["status"] == "completed" and job["transcript"]
    doc_text = job["transcript"]
    assert doc_text == doc_text.lower() and doc_text[-1] not in ".?!"
    assert ready["workers"][0]["formatting"].startswith("unavailable")
    assert any("written transcripts unavailable" in w for w in ready["warnings"])
    assert "written transcripts are OFF" in log_path.read_text()
