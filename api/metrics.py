"""Observability on the API side: ``/metrics`` for Prometheus and ``job_id`` in request logs.

The figures come from the database and the broker at scrape time (``JobStoreCollector``), so
one API scrape shows the whole service however many workers run; per-worker histograms come
from each worker's own endpoint (see worker/metrics.py). The registry belongs to the app, not
the process, so several apps in one process (tests) never clash over metric names.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, request
from flask.blueprints import BlueprintSetupState
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from api.services import services
from shared.logs import JOB_ID
from shared.metrics import JobStoreCollector

bp = Blueprint("metrics", __name__)
REGISTRY_KEY = "stt_metrics_registry"


@bp.record_once
def _build_registry(state: BlueprintSetupState) -> None:
    app = state.app  # the Flask app, typed as Flask's request-free base class
    svc = services(app)
    # No auto-describe: it would query the database while the app is being built.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobStoreCollector(svc.settings, svc.sessions))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    app.extensions[REGISTRY_KEY] = registry


@bp.get("/metrics")
def metrics() -> Response:
    registry: CollectorRegistry = current_app.extensions[REGISTRY_KEY]
    return Response(generate_latest(registry), mimetype=None, content_type=CONTENT_TYPE_LATEST)


@bp.before_app_request
def _job_id_into_logs() -> None:
    """Routes under /v1/jobs/<job_id> log with the job's id, like the worker that runs it."""
    job_id = (request.view_args or {}).get("job_id")
    if job_id is not None:
        g.stt_job_log_token = JOB_ID.set(str(job_id))


@bp.teardown_app_request
def _job_id_out_of_logs(_error: BaseException | None) -> None:
    token = g.pop("stt_job_log_token", None)
    if token is not None:
        try:
            JOB_ID.reset(token)
        except ValueError:  # reset from another context: clearing is what matters
            JOB_ID.set(None)
