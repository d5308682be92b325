"""/v1/batches: many server paths in one request, each answered on its own.

A batch is a backfill through HTTP: the same submitter as ``stt backfill`` (bulk queue, one job
per content+model+options, so a file already done or queued is answered by its earlier job).
An item that cannot be queued (outside the roots, missing, not audio) is reported in the
answer and stored on the batch; it never fails the other items. Only a malformed request (no
list, too many paths) is refused as a whole. The API sends every item at once, so the request
size is capped (STT_BATCH_MAX_PATHS); archives go through ``stt backfill``, which has a window.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from api.auth import current_owner
from api.request_models import BatchPageQuery, BatchRequest
from api.serialize import job_json
from api.services import services
from api.submission import request_fields
from shared.backfill.batches import load_batch, submit_batch
from shared.backfill.items import Item, Outcome
from shared.jobs.records import _decode_cursor, encode_cursor
from shared.store.tables import Batch, BatchState, Job, JobStatus

bp = Blueprint("batches", __name__, url_prefix="/v1/batches")
UNFINISHED = (JobStatus.QUEUED, JobStatus.PROCESSING)


@bp.post("")
def create_batch() -> Response:
    svc = services()
    checked = BatchRequest.model_validate(
        request_fields(request), context={"settings": svc.settings}
    )
    meta = checked.metadata
    # A non-string entry becomes a path no file has, and is rejected as an item like any other.
    items = [Item(path if isinstance(path, str) else "", meta) for path in checked.paths]
    batch_id, outcomes = submit_batch(
        svc.settings, svc.sessions, svc.celery, items, source="api", meta=meta,
        callback_url=checked.callback_url, options=checked.decoding_options(),
        owner=current_owner(),
    )
    with svc.sessions() as session:
        body = batch_json(session, load_batch(session, batch_id))
    body["results"] = [_result(outcome) for outcome in outcomes]
    response = jsonify(body)
    response.status_code = 202
    response.headers["Location"] = body["links"]["self"]
    return response


@bp.get("/<batch_id>")
def get_batch(batch_id: str) -> Response:
    page = BatchPageQuery.model_validate(request.args.to_dict())
    with services().sessions() as session:
        batch = load_batch(session, batch_id, current_owner())
        jobs, cursor = _jobs_page(session, batch.id, page.limit, page.cursor)
        body = batch_json(session, batch)
        body["jobs"] = [job_json(job) for job in jobs]
        body["next_cursor"] = cursor
        return jsonify(body)


def batch_json(session: Session, batch: Batch) -> dict[str, Any]:
    counts = _status_counts(session, batch.id)
    unfinished = sum(counts[status] for status in UNFINISHED)
    return {
        "id": str(batch.id),
        "source": batch.source,
        "state": batch.state,
        "done": batch.state == BatchState.SUBMITTED and unfinished == 0,
        "items": {
            "total": batch.total_items, "queued": batch.queued_items,
            "existing": batch.existing_items, "rejected": batch.rejected_items,
        },
        "jobs_by_status": counts,
        "rejected": batch.rejected,
        "metadata": batch.meta,
        "callback_url": batch.callback_url,
        "created_at": batch.created_at.isoformat(),
        "submitted_at": batch.submitted_at.isoformat() if batch.submitted_at else None,
        "links": {"self": url_for("batches.get_batch", batch_id=batch.id, _external=True)},
    }


def _result(outcome: Outcome) -> dict[str, Any]:
    result = outcome.to_json()
    if result["job_id"]:
        result["links"] = {"job": url_for("jobs.get_job", job_id=result["job_id"], _external=True)}
    return result


def _status_counts(session: Session, batch_id: uuid.UUID) -> dict[str, int]:
    counts = {status.value: 0 for status in JobStatus}
    query = select(Job.status, func.count()).where(Job.batch_id == batch_id).group_by(Job.status)
    for status, count in session.execute(query):
        counts[status] = count
    return counts


def _jobs_page(
    session: Session, batch_id: uuid.UUID, limit: int, cursor: str | None
) -> tuple[list[Job], str | None]:
    """Oldest first (the order they were submitted), keyset-paginated on (created_at, id)."""
    query = select(Job).where(Job.batch_id == batch_id).order_by(Job.created_at, Job.id)
    if cursor:
        created, job_id = _decode_cursor(cursor)
        query = query.where(
            or_(Job.created_at > created, and_(Job.created_at == created, Job.id > job_id))
        )
    jobs = list(session.scalars(query.limit(limit + 1)))
    next_cursor = encode_cursor(jobs[limit - 1]) if len(jobs) > limit else None
    return jobs[:limit], next_cursor
