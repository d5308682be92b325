"""Liveness and readiness: /healthz answers while the process runs; /readyz checks job needs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypedDict

from flask import Blueprint, Response, jsonify
from sqlalchemy import select

from api.services import services
from shared.store.sessions import ping
from shared.store.tables import Worker, utcnow

bp = Blueprint("health", __name__)


class WorkerJson(TypedDict):
    """A recently seen worker, as /readyz lists it."""

    name: str
    queues: list[str]
    engine: str | None
    model_id: str | None
    model_license: str | None
    device: str | None
    fallback: bool
    model_note: str | None
    compute: str | None  # e.g. "cpu: conv torch-bf16, transformer onnx-int8 (measured)"
    formatting: str | None  # the written-text models, or why transcripts stay spoken


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    checks = {"database": _check_database(), "broker": _check_broker()}
    workers = _recent_workers() if checks["database"] == "ok" else []
    checks["workers"] = "ok" if workers else "no worker seen recently"
    ready = all(value == "ok" for value in checks.values())
    warnings = [_fallback_warning(w) for w in workers if w["fallback"]] + [
        f"model {w['model_id']} is licensed {w['model_license']}: not for commercial use"
        for w in workers
        if w["model_license"] and "nc" in w["model_license"].lower().split("-")
    ] + [
        f"worker {w['name']}: written transcripts {w['formatting']}"
        for w in workers
        if (w["formatting"] or "").startswith("unavailable")
    ]
    body: dict[str, Any] = {
        "status": "ready" if ready else "not ready",
        "checks": checks,
        "workers": workers,
    }
    body["warnings"] = sorted(set(warnings))
    return jsonify(body), 200 if ready else 503


def _fallback_warning(worker: WorkerJson) -> str:
    """Name the offline default and its measured quality when the worker says them."""
    note = f": {worker['model_note']}" if worker["model_note"] else ""
    return f"worker {worker['name']} serves a fallback model ({worker['model_id']}){note}"


def _check_database() -> str:
    try:
        ping(services().engine)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return f"unavailable: {type(exc).__name__}"
    return "ok"


def _check_broker() -> str:
    try:
        with services().celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return f"unavailable: {type(exc).__name__}"
    return "ok"


def _recent_workers() -> list[WorkerJson]:
    svc = services()
    horizon = utcnow() - timedelta(seconds=svc.settings.worker_heartbeat_s * 3)
    with svc.sessions() as session:
        rows = session.scalars(select(Worker).where(Worker.last_seen >= horizon))
        return [
            {
                "name": w.name,
                "queues": w.queues.split(","),
                "engine": w.engine,
                "model_id": w.model_id,
                "model_license": w.model_license,
                "device": w.device,
                "fallback": w.fallback,
                "model_note": w.model_note,
                "compute": w.compute,
                "formatting": w.formatting,
            }
            for w in rows
        ]
