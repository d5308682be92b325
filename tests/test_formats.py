"""Transcript rendering: subtitles parsed back with independent parsers, NFC, JSON round trip."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict

import pytest
import srt
import webvtt

from shared.speech.engines.base import Segment, Token, Word
from shared.speech.formats import MAX_CUE_CHARS, MAX_CUE_S, cues, render, segments_from_json


def segment(text: str, start: float, step: float = 0.5, conf: float | None = 0.8) -> Segment:
    """A segment with evenly timed words, ``step`` seconds per word."""
    words = [
        Word(w, start + i * step, start + i * step + step * 0.8, conf)
        for i, w in enumerate(text.split())
    ]
    return Segment(text, start, words[-1].end, words)


LONG = (
    "hôm nay trời đẹp chúng tôi đi dạo quanh hồ gươm rồi ghé vào một quán cà phê nhỏ "
    "bên đường để nghe nhạc trịnh và ngắm người qua lại cho đến khi trời tối hẳn"
)
SEGMENTS = [
    segment("xin chào các bạn", 0.5),
    segment(LONG, 3.0, step=0.4),
    Segment(
        "đoạn này không có thời gian từng từ nhưng vẫn khá dài để phải chia nhỏ ra", 40.0, 52.0
    ),
    segment("tạm biệt", 3725.25),
]
TEXT = " ".join(s.text for s in SEGMENTS)


def vtt_seconds(stamp: str) -> float:
    h, m, s = stamp.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_cues_are_short_and_split_at_words() -> None:
    out = cues(SEGMENTS)
    assert len(out) > len(SEGMENTS)
    for cue in out:
        assert cue.end - cue.start <= MAX_CUE_S + 1e-6
        assert len(cue.text) <= MAX_CUE_CHARS and cue.end >= cue.start
    assert " ".join(c.text for c in out) == TEXT  # nothing lost, no word broken
    long_cues = [c for c in out if 3.0 <= c.start < 40.0]
    assert long_cues[0].start == 3.0 and long_cues[-1].end == pytest.approx(SEGMENTS[1].end)
    timeless = [c for c in out if 40.0 <= c.start < 60.0]
    assert len(timeless) >= 2 and timeless[0].start == 40.0 and timeless[-1].end == 52.0


def test_srt_parses_back() -> None:
    body, mime = render("srt", SEGMENTS, TEXT, 3730.0)
    assert mime == "application/x-subrip"
    parsed = list(srt.parse(body))
    expected = cues(SEGMENTS)
    assert [p.index for p in parsed] == list(range(1, len(expected) + 1))
    for p, c in zip(parsed, expected, strict=True):
        assert p.start.total_seconds() == pytest.approx(c.start, abs=5e-4)
        assert p.end.total_seconds() == pytest.approx(c.end, abs=5e-4)
        assert p.content.replace("\n", " ") == c.text
        assert all(len(line) <= 42 for line in p.content.split("\n") if " " in line)
    assert "01:02:05,250 --> " in body  # hours past the first


def test_vtt_parses_back() -> None:
    body, mime = render("vtt", SEGMENTS, TEXT, 3730.0)
    assert mime == "text/vtt" and body.startswith("WEBVTT\n\n")
    parsed = webvtt.from_string(body).captions
    expected = cues(SEGMENTS)
    assert len(parsed) == len(expected)
    for p, c in zip(parsed, expected, strict=True):
        assert vtt_seconds(p.start) == pytest.approx(c.start, abs=5e-4)
        assert vtt_seconds(p.end) == pytest.approx(c.end, abs=5e-4)
        assert p.text.replace("\n", " ") == c.text


def test_text_leaves_in_nfc() -> None:
    nfd = unicodedata.normalize("NFD", "tiếng Việt có dấu thanh")
    assert nfd != unicodedata.normalize("NFC", nfd)
    segs = [
        Segment(
            nfd, 0.0, 2.0, [Word(w, 0.1 * i, 0.1 * i + 0.05) for i, w in enumerate(nfd.split())]
        )
    ]
    for fmt in ("txt", "json", "srt", "vtt"):
        body, _ = render(fmt, segs, nfd, 2.0)
        assert unicodedata.is_normalized("NFC", body), fmt
        assert "tiếng Việt" in (json.loads(body)["text"] if fmt == "json" else body)


def test_json_round_trips() -> None:
    body, mime = render("json", SEGMENTS, TEXT, 3730.0, language="vi")
    assert mime == "application/json"
    doc = json.loads(body)
    assert doc["text"] == TEXT and doc["language"] == "vi" and doc["duration"] == 3730.0
    back = [
        Segment(
            s["text"],
            s["start"],
            s["end"],
            [Word(w["text"], w["start"], w["end"], w["confidence"]) for w in s["words"]],
        )
        for s in doc["segments"]
    ]
    assert back == [
        Segment(
            s.text,
            round(s.start, 3),
            round(s.end, 3),
            [Word(w.text, round(w.start, 3), round(w.end, 3), w.confidence) for w in s.words],
        )
        for s in SEGMENTS
    ]
    assert doc["segments"][0]["confidence"] == 0.8 and doc["segments"][2]["confidence"] is None
    assert "ô" in body  # UTF-8, not \u escapes


def test_txt_and_errors() -> None:
    assert render("TXT", SEGMENTS, "  xin   chào \n", 1.0) == (
        "xin chào\n",
        "text/plain; charset=utf-8",
    )
    assert render("txt", [], "", 0.0)[0] == ""
    with pytest.raises(ValueError, match="unknown format"):
        render("docx", SEGMENTS, TEXT, 1.0)


def test_empty_transcript_subtitles() -> None:
    assert list(srt.parse(render("srt", [], "", 0.0)[0])) == []
    assert webvtt.from_string(render("vtt", [], "", 0.0)[0]).captions == []


def test_vtt_escapes_markup() -> None:
    body, _ = render("vtt", [Segment("a < b & c", 0.0, 1.0)], "a < b & c", 1.0)
    assert "a &lt; b &amp; c" in body


def test_subtitles_without_segments_fall_back_to_the_whole_file() -> None:
    parsed = list(srt.parse(render("srt", [], LONG, 20.0)[0]))
    assert len(parsed) >= 2 and parsed[0].start.total_seconds() == 0.0
    assert parsed[-1].end.total_seconds() == pytest.approx(20.0)
    assert " ".join(p.content.replace("\n", " ") for p in parsed) == LONG


def written_segment(tokens: list[tuple[str, int, int]], spoken: str, start: float) -> Segment:
    """A formatted segment: ``spoken`` words timed 0.5 s apart, written tokens over them."""
    base = segment(spoken, start)
    return Segment(
        " ".join(t for t, _, _ in tokens),
        base.start,
        base.end,
        base.words,
        spoken,
        [Token(t, base.words[a].start, base.words[b].end, a, b) for t, a, b in tokens],
    )


def test_written_tokens_and_spoken_form_reach_the_json_and_read_back() -> None:
    seg = written_segment(
        [("Ngày", 0, 0), ("15/8,", 1, 4), ("Hà", 5, 5), ("Nội.", 6, 6)],
        "ngày mười lăm tháng tám hà nội",
        2.0,
    )
    body, _ = render("json", [seg], seg.text, 10.0, spoken_text=seg.spoken_text)
    doc = json.loads(body)
    assert doc["text"] == "Ngày 15/8, Hà Nội." and doc["spoken_text"] == seg.spoken_text
    number = doc["segments"][0]["tokens"][1]
    assert (number["first_word"], number["last_word"]) == (1, 4)
    assert (number["start"], number["end"]) == (2.5, 4.4)  # from "mười" to "tám"
    assert [w["text"] for w in doc["segments"][0]["words"]] == seg.spoken_text.split()
    assert segments_from_json(doc["segments"]) == [seg]
    txt, _ = render("txt", [seg], seg.text, 10.0, spoken_text=seg.spoken_text)
    assert txt == "Ngày 15/8, Hà Nội.\n"


def test_an_unformatted_transcript_is_its_own_spoken_form() -> None:
    doc = json.loads(render("json", SEGMENTS, TEXT, 3730.0)[0])
    assert doc["spoken_text"] == TEXT and doc["segments"][0]["spoken_text"] == "xin chào các bạn"
    assert doc["segments"][0]["tokens"] == []


def test_a_long_sentence_is_cut_after_a_comma_not_mid_phrase() -> None:
    words = (
        "sáng nay đoàn công tác của bộ đã đến thăm các hộ dân bị ảnh hưởng bởi lũ, "
        "trao quà và động viên bà con sớm ổn định cuộc sống sau thiên tai"
    ).split()
    tokens = [(w, i, i) for i, w in enumerate(words)]
    seg = written_segment(tokens, " ".join(w.rstrip(",") for w in words), 0.0)
    found = cues([seg], max_s=60.0)
    assert len(found) == 2 and found[0].text.endswith("bởi lũ,"), found
    assert " ".join(c.text for c in found) == seg.text


def test_without_a_late_comma_the_cut_stays_at_the_length_limit() -> None:
    words = ("một, " + LONG).split()
    seg = written_segment([(w, i, i) for i, w in enumerate(words)], " ".join(words), 0.0)
    found = cues([seg], max_s=60.0)
    assert not found[0].text == "một,"  # a comma this early would flash a one-word cue
    assert all(len(c.text) <= MAX_CUE_CHARS for c in found)
    assert " ".join(c.text for c in found) == seg.text


def test_stored_segments_read_back_with_their_written_form_and_old_rows_still_read() -> None:
    words = [Word("mười", 0.0, 0.3, 0.9), Word("lăm", 0.3, 0.6, 0.8), Word("giờ", 0.6, 0.9)]
    written = Segment(
        "15 giờ", 0.0, 0.9, words, spoken_text="mười lăm giờ",
        tokens=[Token("15", 0.0, 0.6, 0, 1), Token("giờ", 0.6, 0.9, 2, 2)],
    )
    stored = json.loads(json.dumps([asdict(written), asdict(SEGMENTS[0])]))
    assert segments_from_json(stored) == [written, SEGMENTS[0]]
    old_row = {k: v for k, v in asdict(written).items() if k not in ("spoken_text", "tokens")}
    back = segments_from_json([old_row])[0]
    assert back.words == words and back.tokens == [] and back.spoken_text == ""
