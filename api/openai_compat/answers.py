"""A completed job as OpenAI's transcription answers: json, text, srt, vtt, verbose_json and
diarized_json (one segment per speaker turn, the service's utterances).

verbose_json carries the fields OpenAI's clients parse. Those that describe Whisper's own
decoding are filled from what a CTC recogniser has: ``avg_logprob`` is the mean log of the
segment's word confidences, ``compression_ratio`` is measured on its text as Whisper does,
``no_speech_prob`` is 0 (speech detection already cut the silence away), ``temperature`` 0
and ``tokens`` empty (there are no Whisper token ids); ``seek`` is the start in centiseconds.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any

from flask import Response, jsonify

from shared.speech.engines.base import Segment
from shared.speech.formats import clean, render, segments_from_json, utterance_dict, utterances
from shared.store.tables import Job

LANGUAGE_NAMES = {"vi": "vietnamese", "en": "english"}  # verbose_json names it as Whisper does
RENDERED = {"text": "txt", "srt": "srt", "vtt": "vtt"}


def transcription_answer(job: Job, fmt: str, granularities: Sequence[str]) -> Response:
    text = job.transcript or ""
    segments = segments_from_json((job.result or {}).get("segments", []))
    duration = job.duration_s or 0.0
    if fmt in RENDERED:
        body, mimetype = render(RENDERED[fmt], segments, text, duration)
        return Response(body, mimetype=mimetype)
    if fmt == "json":
        return jsonify({"text": clean(text)})
    if fmt == "diarized_json":
        return jsonify(_diarized(text, segments, duration))
    answer: dict[str, Any] = {
        "task": "transcribe",
        "language": _language(job),
        "duration": round(duration, 3),
        "text": clean(text),
    }
    if "segment" in granularities:
        answer["segments"] = [_segment(i, seg) for i, seg in enumerate(segments)]
    if "word" in granularities:
        answer["words"] = [word for seg in segments for word in _words(seg)]
    return jsonify(answer)


def _diarized(text: str, segments: Sequence[Segment], duration: float) -> dict[str, Any]:
    """Speaker turns as OpenAI's diarized segments. A job whose speakers could not be told
    apart (too little speech) is one speaker, A, as OpenAI labels a lone voice."""
    turns = [utterance_dict(group) for group in utterances(segments)]
    return {
        "task": "transcribe",
        "duration": round(duration, 3),
        "text": clean(text),
        "segments": [
            {
                "type": "transcript.text.segment",
                "id": f"seg_{index}",
                "start": turn["start"],
                "end": turn["end"],
                "text": turn["text"],
                "speaker": turn["speaker"] or "A",
            }
            for index, turn in enumerate(turns)
        ],
        "usage": {"type": "duration", "seconds": round(duration, 3)},
    }


def _language(job: Job) -> str:
    code = str((job.decoding_options or {}).get("language") or "vi").lower()
    return LANGUAGE_NAMES.get(code.split("-")[0], code)


def _segment(index: int, seg: Segment) -> dict[str, Any]:
    text = clean(seg.text)
    return {
        "id": index,
        "seek": round(seg.start * 100),
        "start": round(seg.start, 3),
        "end": round(seg.end, 3),
        "text": text,
        "tokens": [],
        "temperature": 0.0,
        "avg_logprob": _avg_logprob(seg),
        "compression_ratio": _compression_ratio(text),
        "no_speech_prob": 0.0,
    }


def _words(seg: Segment) -> list[dict[str, Any]]:
    """The written tokens when the segment has them ("15", "Hà Nội,"), else the spoken words."""
    timed = seg.tokens or seg.words
    return [
        {"word": clean(w.text), "start": round(w.start, 3), "end": round(w.end, 3)}
        for w in timed
        if clean(w.text)
    ]


def _avg_logprob(seg: Segment) -> float:
    known = [w.confidence for w in seg.words if w.confidence is not None]
    if not known:
        return 0.0
    return round(sum(math.log(max(c, 1e-6)) for c in known) / len(known), 4)


def _compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return round(len(data) / len(zlib.compress(data)), 4) if data else 0.0
