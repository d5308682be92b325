"""/v1/jobs: submit, poll, list, cancel or delete, and read transcripts."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.auth import current_owner
from api.deliveries import forget_deliveries, notify_terminal, set_payload_mode
from api.request_models import JobListQuery, TranscriptQuery
from api.serialize import job_json
from api.services import Services, services
from api.submission import build_submission, callback_payload_mode, request_fields
from shared.apikeys import scoped_idempotency_key
from shared.errors import ErrorCode, SttError
from shared.jobs import backpressure
from shared.jobs import records as job_store
from shared.jobs.queue import enqueue_transcription
from shared.speech.formats import render, segments_from_json
from shared.store.tables import Job, JobStatus, utcnow

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")
log = logging.getLogger(__name__)


def submit_job(
    fields: dict[str, Any], audio_path: str | None, extra_roots: tuple[Path, ...] = ()
) -> tuple[Job, bool]:
    """Record the job, commit, then enqueue: a message never names a row that doesn't exist."""
    svc = services()
    payload_mode = callback_payload_mode(fields)
    _ensure_room(svc, fields)
    sub = build_submission(
        request, svc.settings, fields, audio_path, extra_roots, owner=current_owner()
    )
    job_folder = job_store.job_dir(svc.settings.data_dir, sub.job_id)
    try:
        with svc.sessions() as session:
            job, created = job_store.create_job(session, sub)
            if created:
                set_payload_mode(session, job, payload_mode)
                _enqueue_or_forget(session, job)
    except BaseException:
        shutil.rmtree(job_folder, ignore_errors=True)
        raise
    if not created:
        shutil.rmtree(job_folder, ignore_errors=True)  # the replay's own copy of the upload
    return job, created


def _enqueue_or_forget(session: Session, job: Job) -> None:
    """A job the broker refused is removed again, so the client's 503 means "nothing accepted"."""
    svc = services()
    try:
        enqueue_transcription(svc.celery, svc.settings, job.id, job.queue)
    except Exception:
        session.delete(job)
        session.commit()
        raise
    _mark_sent(svc, job)


def _mark_sent(svc: Services, job: Job) -> None:
    """``enqueued_at`` tells the reconciler the message went out. Failing to record it only
    costs a duplicate message later (the reconciler sends it again), never the client's 202."""
    try:
        with svc.sessions() as session:
            session.execute(update(Job).where(Job.id == job.id).values(enqueued_at=utcnow()))
            session.commit()
    except Exception as exc:  # noqa: BLE001 - the job is accepted and queued either way
        log.warning("job %s: sent, but enqueued_at not recorded: %s", job.id, exc)


def _ensure_room(svc: Services, fields: dict[str, Any]) -> None:
    """503 queue_full before the upload is stored; a replayed Idempotency-Key still gets its
    job back, full queue or not."""
    # Stored keys are scoped by API key (shared.apikeys.scoped_idempotency_key): look up the same.
    key = scoped_idempotency_key(current_owner(), request.headers.get("Idempotency-Key"))
    with svc.sessions() as session:
        if key and session.scalar(select(Job.id).where(Job.idempotency_key == key)) is not None:
            return
        backpressure.ensure_room(session, svc.settings, fields.get("queue"))


@bp.post("")
def create_job() -> Response:
    fields = request_fields(request)
    job, created = submit_job(fields, fields.get("audio_path"))
    body = job_json(job)
    response = jsonify(body)
    response.status_code = 202 if created else 200
    response.headers["Location"] = body["links"]["self"]
    return response


@bp.get("")
def list_jobs() -> Response:
    query = JobListQuery.model_validate(request.args.to_dict())
    with services().sessions() as session:
        jobs, cursor = job_store.list_jobs(
            session, query.status, query.limit, query.cursor, owner=current_owner()
        )
        return jsonify({"jobs": [job_json(j) for j in jobs], "next_cursor": cursor})


@bp.get("/<job_id>")
def get_job(job_id: str) -> Response:
    with services().sessions() as session:
        return jsonify(job_json(job_store.get_job(session, job_id, current_owner())))


@bp.delete("/<job_id>")
def delete_job(job_id: str) -> Response:
    svc = services()
    with svc.sessions() as session:
        job = job_store.get_job(session, job_id, current_owner())
        outcome = job_store.cancel_or_delete(session, job, svc.settings.data_dir)
        if outcome == "deleted":
            forget_deliveries(session, job)
            return Response(status=204)
        notify_terminal(session, job)  # the canceled event, for a job with a callback_url
        return jsonify(job_json(job))


@bp.get("/<job_id>/transcript")
def get_transcript(job_id: str) -> Response:
    with services().sessions() as session:
        job = job_store.get_job(session, job_id, current_owner())
        if job.status != JobStatus.COMPLETED:
            raise SttError(ErrorCode.JOB_NOT_FINISHED, f"the job is {job.status}, not completed")
        fmt = TranscriptQuery.model_validate(request.args.to_dict()).format
        result = job.result or {}
        try:
            segments = segments_from_json(result.get("segments", []))
            body, mimetype = render(
                fmt,
                segments,
                job.transcript or "",
                job.duration_s or 0.0,
                spoken_text=result.get("spoken_text"),
                speakers=result.get("speakers"),
            )
        except ValueError as exc:
            raise SttError(ErrorCode.INVALID_REQUEST, str(exc)) from exc
        return Response(body, mimetype=mimetype)
