"""Render a finished transcript as plain text, JSON, SRT or WebVTT.

Subtitles are read, not searched, so long segments are cut into cues short enough to read in
time (at most ``MAX_CUE_S`` seconds and ``MAX_CUE_CHARS`` characters, two lines of
``LINE_CHARS``), always at word boundaries and timed from word times when the engine gave them.
Written transcripts come one sentence per segment, so a cue ends where a sentence does; a
sentence too long for one cue is cut after a comma where one falls late enough, since a line
that stops mid-phrase is what subtitle readers complain about.
All text leaves in Unicode NFC: Vietnamese tone marks typed or decoded as combining characters
would otherwise compare, search and display differently from the same word precomposed.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from shared.speech.engines.base import Segment, Token, Word
from shared.speech.written import spread_words

MAX_CUE_S = 7.0
MAX_CUE_CHARS = 84
LINE_CHARS = 42

MIMETYPES: dict[str, str] = {
    "txt": "text/plain; charset=utf-8",
    "json": "application/json",
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
}
FORMATS: tuple[str, ...] = tuple(MIMETYPES)

_SPACE = re.compile(r"\s+")
_PHRASE_END = (",", ";", ":", ".", "?", "!", "…")
# A cue cut after a comma must keep at least this share of what would fit, or the cut is not
# worth a short flash of text.
MIN_PHRASE_SHARE = 0.4


@dataclass(frozen=True, slots=True)
class Cue:
    start: float
    end: float
    text: str
    speaker: str | None = None


def clean(text: str) -> str:
    """NFC with whitespace collapsed (a blank line inside a cue would end it in SRT/VTT)."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


Unit = tuple[str, float, float]


def _units(seg: Segment) -> list[Unit]:
    """Timed written tokens of a segment, else its words (spread by characters if untimed)."""
    if seg.tokens:
        return [(clean(t.text), t.start, t.end) for t in seg.tokens if clean(t.text)]
    return [(clean(w.text), w.start, w.end) for w in spread_words(seg) if clean(w.text)]


def cues(
    segments: Sequence[Segment], max_s: float = MAX_CUE_S, max_chars: int = MAX_CUE_CHARS
) -> list[Cue]:
    """Subtitle cues: a segment that fits is one cue, a longer one is split between words."""
    out: list[Cue] = []
    for seg in segments:
        text = clean(seg.text)
        if not text:
            continue
        if len(text) <= max_chars and seg.end - seg.start <= max_s:
            out.append(Cue(seg.start, max(seg.start, seg.end), text, seg.speaker))
            continue
        out.extend(replace(c, speaker=seg.speaker) for c in _split(_units(seg), max_s, max_chars))
    return out


def _split(units: list[Unit], max_s: float, max_chars: int) -> list[Cue]:
    out: list[Cue] = []
    group: list[Unit] = []
    for unit in units:
        while group and _overflows(group, unit, max_s, max_chars):
            cut = _phrase_cut(group)
            out.append(_cue(group[:cut]))
            group = group[cut:]
        group.append(unit)
    if group:
        out.append(_cue(group))
    return out


def _overflows(group: list[Unit], unit: Unit, max_s: float, max_chars: int) -> bool:
    joined = len(" ".join(u[0] for u in group)) + 1 + len(unit[0])
    return joined > max_chars or unit[2] - group[0][1] > max_s


def _phrase_cut(group: list[Unit]) -> int:
    """Where to end the cue: after the last phrase end late enough in it, else after it all."""
    total = len(" ".join(u[0] for u in group))
    length = 0
    best = len(group)
    for i, unit in enumerate(group[:-1]):
        length += len(unit[0]) + (1 if i else 0)
        if unit[0].endswith(_PHRASE_END) and length >= MIN_PHRASE_SHARE * total:
            best = i + 1
    return best


def _cue(group: list[Unit]) -> Cue:
    start = group[0][1]
    return Cue(start, max(start, group[-1][2]), " ".join(u[0] for u in group))


def _wrap(text: str) -> str:
    """Two balanced lines when the cue is too wide for one, broken at the space nearest mid."""
    if len(text) <= LINE_CHARS or " " not in text:
        return text
    mid = len(text) // 2
    spaces = [i for i, ch in enumerate(text) if ch == " "]
    cut = min(spaces, key=lambda i: abs(i - mid))
    return text[:cut] + "\n" + text[cut + 1 :]


def _timestamp(t: float, sep: str) -> str:
    ms = max(0, round(t * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(segments: Sequence[Segment]) -> str:
    """SRT has no speaker markup: a speaker's cue starts with its label, as subtitlers write."""

    def text(c: Cue) -> str:
        return _wrap(c.text if c.speaker is None else f"{c.speaker}: {c.text}")

    blocks = [
        f"{i}\n{_timestamp(c.start, ',')} --> {_timestamp(c.end, ',')}\n{text(c)}\n"
        for i, c in enumerate(cues(segments), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(segments: Sequence[Segment]) -> str:
    """WebVTT's voice spans (``<v A>``) name the speaker, so players can style or list them."""

    def escape(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def text(c: Cue) -> str:
        body = escape(_wrap(c.text))
        return body if c.speaker is None else f"<v {escape(clean(c.speaker))}>{body}"

    blocks = [
        f"{_timestamp(c.start, '.')} --> {_timestamp(c.end, '.')}\n{text(c)}\n"
        for c in cues(segments)
    ]
    return "\n".join(["WEBVTT\n", *blocks])


def to_dict(
    segments: Sequence[Segment],
    text: str,
    duration_s: float,
    language: str = "vi",
    spoken_text: str | None = None,
    speakers: dict[str, Any] | None = None,
) -> dict[str, object]:
    """The JSON document: times in seconds rounded to milliseconds, confidences may be null.

    ``text`` is the written transcript and ``spoken_text`` the recogniser's own words (the same
    text where nothing was formatted); each segment keeps its recognised ``words`` and, when
    formatted, the written ``tokens`` with the range of words each was made from. Where
    speakers were told apart, ``utterances`` lists each speaker's turns and ``speakers`` says
    how they were found."""
    document: dict[str, object] = {
        "text": clean(text),
        "spoken_text": clean(text if spoken_text is None else spoken_text),
        "language": language,
        "duration": round(duration_s, 3),
        "segments": [_segment_dict(s) for s in segments],
    }
    if has_speakers(segments):
        document["utterances"] = [utterance_dict(u) for u in utterances(segments)]
    if speakers is not None:
        document["speakers"] = speakers
    return document


def has_speakers(segments: Sequence[Segment]) -> bool:
    return any(s.speaker is not None for s in segments)


def utterances(segments: Sequence[Segment]) -> list[list[Segment]]:
    """Consecutive segments of one speaker (and channel): a segment never spans two."""
    out: list[list[Segment]] = []
    for seg in segments:
        if out and (out[-1][-1].speaker, out[-1][-1].channel) == (seg.speaker, seg.channel):
            out[-1].append(seg)
        else:
            out.append([seg])
    return out


def utterance_dict(group: list[Segment]) -> dict[str, object]:
    first = group[0]
    words = [w for s in group for w in s.words]
    return {
        "speaker": first.speaker,
        **({"channel": first.channel} if first.channel is not None else {}),
        "start": round(first.start, 3),
        "end": round(max(s.end for s in group), 3),
        "text": clean(" ".join(s.text for s in group)),
        "words": [_word_dict(w) for w in words],
    }


def _word_dict(w: Word) -> dict[str, object]:
    out: dict[str, object] = {
        "text": clean(w.text),
        "start": round(w.start, 3),
        "end": round(w.end, 3),
        "confidence": None if w.confidence is None else round(w.confidence, 4),
    }
    if w.speaker is not None:
        out["speaker"] = w.speaker
    if w.channel is not None:
        out["channel"] = w.channel
    return out


def _segment_dict(s: Segment) -> dict[str, object]:
    known = [w.confidence for w in s.words if w.confidence is not None]
    return {
        "text": clean(s.text),
        "spoken_text": clean(s.spoken_text or s.text),
        "start": round(s.start, 3),
        "end": round(s.end, 3),
        "confidence": round(sum(known) / len(known), 4) if known else None,
        **({"speaker": s.speaker} if s.speaker is not None else {}),
        **({"channel": s.channel} if s.channel is not None else {}),
        "words": [_word_dict(w) for w in s.words],
        "tokens": [
            {
                "text": clean(t.text),
                "start": round(t.start, 3),
                "end": round(t.end, 3),
                "first_word": t.first_word,
                "last_word": t.last_word,
            }
            for t in s.tokens
        ],
    }


def render(
    fmt: str,
    segments: Sequence[Segment],
    text: str,
    duration_s: float,
    language: str = "vi",
    spoken_text: str | None = None,
    speakers: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """``(body, mimetype)`` of the transcript in ``fmt``; ValueError for an unknown format."""
    key = fmt.strip().lower()
    if key not in MIMETYPES:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not segments and clean(text) and key in ("srt", "vtt"):
        # an engine without times: one segment over the file, split into cues by characters
        segments = [Segment(text, 0.0, max(duration_s, 0.0))]
    if key == "txt":
        body = _speaker_lines(segments) if has_speakers(segments) else _plain(text, segments)
    elif key == "json":
        document = to_dict(segments, text, duration_s, language, spoken_text, speakers)
        body = json.dumps(document, ensure_ascii=False)
    elif key == "srt":
        body = to_srt(segments)
    else:
        body = to_vtt(segments)
    return body, MIMETYPES[key]


def _plain(text: str, segments: Sequence[Segment]) -> str:
    body = clean(text or " ".join(s.text for s in segments))
    return body + "\n" if body else ""


def _speaker_lines(segments: Sequence[Segment]) -> str:
    """One line per utterance, its speaker first: "A: ..." (call logs read this way)."""
    lines = [
        f"{clean(group[0].speaker or '')}: {clean(' '.join(s.text for s in group))}"
        for group in utterances(segments)
    ]
    return "".join(line + "\n" for line in lines)


def segments_from_json(items: Sequence[dict[str, Any]]) -> list[Segment]:
    """Segments back from the job row's stored result (dataclasses serialised with asdict).
    Rows written before segments carried a written form have no ``spoken_text``/``tokens``."""
    return [
        Segment(
            item["text"],
            item["start"],
            item["end"],
            [
                Word(
                    w["text"],
                    w["start"],
                    w["end"],
                    w.get("confidence"),
                    w.get("speaker"),
                    w.get("channel"),
                )
                for w in item["words"]
            ],
            item.get("spoken_text") or "",
            [_token(t) for t in item.get("tokens") or []],
            item.get("speaker"),
            item.get("channel"),
        )
        for item in items
    ]


def _token(item: dict[str, Any]) -> Token:
    return Token(item["text"], item["start"], item["end"], item["first_word"], item["last_word"])
