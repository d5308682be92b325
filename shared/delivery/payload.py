"""The event's body: Standard Webhooks' shape, built from the job row at sending time.

The body is built when an attempt is claimed, not when the event is recorded, so it always
carries the job as it is; its timestamp is the job's finish, stable across retries.
"""

from __future__ import annotations

import json
from typing import Any

from shared.settings import Settings
from shared.speech.formats import has_speakers, segments_from_json, utterance_dict, utterances
from shared.store.tables import Job, JobStatus, utcnow


def public_base_url(settings: Settings) -> str:
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


def build_payload(job: Job, event_type: str, settings: Settings) -> dict[str, Any]:
    """Standard Webhooks' shape: type, timestamp (of the event, stable across retries), data."""
    base = f"{public_base_url(settings)}/v1/jobs/{job.id}"
    error = {"code": job.error_code, "message": job.error_message} if job.error_code else None
    data: dict[str, Any] = {
        "id": str(job.id),
        "status": event_type,
        "error": error,
        "metadata": job.meta,
        "duration_s": job.duration_s,
        "links": {
            "self": base,
            "transcript": f"{base}/transcript" if event_type == JobStatus.COMPLETED else None,
        },
    }
    if job.callback_payload != "thin":
        data["transcript"] = job.transcript if event_type == JobStatus.COMPLETED else None
        if event_type == JobStatus.COMPLETED:
            data.update(speaker_turns(job.result or {}))
    stamp = job.finished_at or utcnow()
    return {"type": f"job.{event_type}", "timestamp": stamp.isoformat(), "data": data}


def speaker_turns(result: dict[str, Any]) -> dict[str, Any]:
    """Who said what, for a call log: how speakers were found and each turn's written text.
    The words with their times stay behind the transcript link: a long call's word list would
    make every delivery large, and a log keeps turns."""
    out: dict[str, Any] = {}
    if result.get("speakers") is not None:
        out["speakers"] = result["speakers"]
    segments = segments_from_json(result.get("segments", []))
    if has_speakers(segments):
        turns = (utterance_dict(group) for group in utterances(segments))
        out["utterances"] = [{k: v for k, v in u.items() if k != "words"} for u in turns]
    return out


def payload_body(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON (Vietnamese stays readable); these exact bytes are signed."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
