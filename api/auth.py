"""API keys at the door: once any key is configured, every route but the open ones needs one.

Closed by default: only the paths in ``OPEN_PATHS`` (health, metrics, the page and its static
files, the OpenAPI document) stay reachable without a key, so a route added later is protected
without anyone remembering to. With no key configured anywhere the API is open (the embedded
default). A key is read from ``Authorization: Bearer <key>`` or ``X-API-Key``, never from the
query string, which would land in access logs. Any route with a ``job_id`` or ``batch_id`` checks
that it belongs to the caller's key here, so blueprints that look them up cannot leak one.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, request
from sqlalchemy.orm import Session

from api.errors import error_response
from api.services import services
from shared.apikeys import authenticate, keys_configured
from shared.backfill.batches import load_batch
from shared.errors import ErrorCode, SttError
from shared.jobs import records as job_store

log = logging.getLogger(__name__)
OPEN_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/web/config"})
OPEN_PREFIXES = ("/static/",)
CHALLENGE = 'Bearer realm="stt"'


def register(app: Flask) -> None:
    app.before_request(_authenticate)


def current_owner() -> str | None:
    """The calling key's name (the owner of the jobs it may see); None while the API is open."""
    owner: str | None = g.get("stt_owner")
    return owner


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def _authenticate() -> tuple[Response, int] | None:
    g.stt_owner = None
    if is_open(request.path):
        return None
    svc = services()
    configured = svc.settings.api_keys
    with svc.sessions() as session:
        if not keys_configured(configured, session):
            return None
        identity = authenticate(presented_key(), configured, session)
        if identity is None:
            log.warning("refused %s %s: no valid API key", request.method, request.path)
            return _unauthorized()
        g.stt_owner = identity.name
        _check_owner(session, identity.name)
    return None


def _check_owner(session: Session, owner: str) -> None:
    """404 for another key's job or batch, before any blueprint code looks it up."""
    args = request.view_args or {}
    if (job_id := args.get("job_id")) is not None:
        job_store.get_job(session, str(job_id), owner=owner)
    if (batch_id := args.get("batch_id")) is not None:
        load_batch(session, str(batch_id), owner=owner)


def presented_key() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("X-API-Key", "").strip()


def _unauthorized() -> tuple[Response, int]:
    response, status = error_response(
        SttError(
            ErrorCode.UNAUTHORIZED,
            "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
        )
    )
    response.headers["WWW-Authenticate"] = CHALLENGE
    return response, status
