"""The job's public JSON shape (one function, so every route answers alike)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import url_for

from shared.store.tables import Job


def iso(value: datetime | None) -> str | None:
    """A timestamp as the API writes it everywhere (ISO 8601), or null."""
    return value.isoformat() if value is not None else None


def job_json(job: Job) -> dict[str, Any]:
    error = {"code": job.error_code, "message": job.error_message} if job.error_code else None
    return {
        "id": str(job.id),
        "status": job.status,
        "queue": job.queue,
        "source": job.source,
        "original_filename": job.original_filename,
        "input_format": job.input_format,
        "sha256": job.sha256,
        "duration_s": job.duration_s,
        "progress": job.progress,
        "transcript": job.transcript,
        "processed_path": job.processed_path,
        "engine": job.engine,
        "model_id": job.model_id,
        "model_license": job.model_license,
        "decoding_options": job.decoding_options,
        "speakers": (job.result or {}).get("speakers"),
        "attempts": job.attempts,
        "processing_s": job.processing_s,
        "error": error,
        "metadata": job.meta,
        "callback_url": job.callback_url,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "links": {
            "self": url_for("jobs.get_job", job_id=job.id, _external=True),
            "transcript": url_for("jobs.get_transcript", job_id=job.id, _external=True),
        },
    }
