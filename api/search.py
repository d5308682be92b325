"""/v1/search: segments of completed transcripts that hold the words asked for.

The handler reads the request (api/request_models.py) and shapes the answer; finding, ranking
and marking the words is shared/search's. ``metadata.KEY=VALUE`` arguments filter on the job's
metadata; they are read here since their names are the user's own keys.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from api.auth import current_owner
from api.field_rules import check_text
from api.request_models import SearchQuery
from api.serialize import iso
from api.services import services
from shared.errors import ErrorCode, SttError
from shared.search import finder
from shared.search.filters import Filters
from shared.search.query import parse

bp = Blueprint("search", __name__, url_prefix="/v1/search")
METADATA_PREFIX = "metadata."
MAX_METADATA_FILTERS = 16


@bp.get("")
def search() -> Response:
    args = SearchQuery.model_validate(request.args.to_dict())
    query = parse(args.q)
    filters = Filters(
        owner=current_owner(),
        status=args.status,
        created_after=args.created_after,
        created_before=args.created_before,
        batch_id=args.batch_id,
        metadata=_metadata_filters(),
    )
    with services().sessions() as session:
        hits, cursor = finder.search(session, query, filters, args.limit, args.cursor)
    return jsonify({"results": [_hit_json(hit) for hit in hits], "next_cursor": cursor})


def _metadata_filters() -> dict[str, str]:
    found = {
        name[len(METADATA_PREFIX) :]: value
        for name, value in request.args.items()
        if name.startswith(METADATA_PREFIX)
    }
    check_text(found)
    if "" in found or len(found) > MAX_METADATA_FILTERS:
        raise SttError(
            ErrorCode.INVALID_REQUEST,
            f"metadata filters are metadata.KEY=VALUE, at most {MAX_METADATA_FILTERS}",
        )
    return found


def _hit_json(hit: finder.Hit) -> dict[str, Any]:
    return {
        "job_id": str(hit.job_id),
        "segment": hit.segment,
        "start": hit.start_s,
        "end": hit.end_s,
        "text": hit.marked.text,
        "highlight": hit.marked.html,
        "marks": [list(span) for span in hit.marked.marks],
        "form": hit.form,
        "metadata": hit.metadata,
        "job": {
            "status": hit.status,
            "created_at": iso(hit.created_at),
            "original_filename": hit.original_filename,
            "duration_s": hit.duration_s,
            "batch_id": str(hit.batch_id) if hit.batch_id else None,
        },
        "links": {
            "job": url_for("jobs.get_job", job_id=hit.job_id, _external=True),
            "audio": url_for("web.job_audio", job_id=hit.job_id, _external=True),
        },
    }
