"""Flask application factory: the thin HTTP front of the job service."""

from __future__ import annotations

from typing import cast

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from api import (
    auth,
    batches,
    deliveries,
    errors,
    health,
    jobs,
    legacy,
    metrics,
    openapi,
    search,
    web,
)
from api.openai_compat import errors as openai_errors
from api.openai_compat import models as openai_models
from api.openai_compat import routes as openai_routes
from api.services import Services, install
from api.wait_slots import WaitSlots
from shared.jobs.queue import make_celery
from shared.settings import Settings, load_settings
from shared.store.sessions import make_engine, make_session_factory


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    app = Flask(__name__)
    # Flask answers 413 before our handler reads a byte beyond the limit (plus form overhead).
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes + 64 * 1024
    provider = cast(DefaultJSONProvider, app.json)  # what Flask() installs; typed as its base
    provider.ensure_ascii = False  # Vietnamese stays readable in JSON answers
    engine = make_engine(settings.database_url)
    install(
        app,
        Services(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            celery=make_celery(settings),
            waits=WaitSlots(settings.waiting_slots),
        ),
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    errors.register(app)
    auth.register(app)  # before any route: API keys, once configured
    openai_errors.register(app)  # OpenAI's error shape under /v1/audio/ and /v1/models
    app.register_blueprint(openapi.bp)  # /openapi.json
    app.register_blueprint(health.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(legacy.bp)
    app.register_blueprint(openai_routes.bp)  # /v1/audio/transcriptions, OpenAI's shape
    app.register_blueprint(openai_models.bp)  # /v1/models: the names `model` selects
    app.register_blueprint(deliveries.bp)  # /v1/jobs/<id>/deliveries: webhook attempts
    app.register_blueprint(batches.bp)  # /v1/batches: many server paths at once
    app.register_blueprint(search.bp)  # /v1/search: words in completed transcripts
    app.register_blueprint(metrics.bp)  # /metrics
    app.register_blueprint(web.bp)  # the page at /, the job's audio
    return app
