"""The services request handlers share, kept on the Flask app rather than in module globals.

Blueprints reach them here, not through api.app: the factory imports every blueprint, so a
blueprint importing the factory's module would close an import circle that only held while
the factory imported its blueprints late, inside the function.
"""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery
from flask import Flask, current_app
from flask.sansio.app import App
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.wait_slots import WaitSlots
from shared.settings import Settings

EXTENSION_KEY = "stt"


@dataclass(slots=True)
class Services:
    """What the request handlers need, built once per app (never module globals)."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    celery: Celery
    waits: WaitSlots


def install(app: Flask, svc: Services) -> None:
    app.extensions[EXTENSION_KEY] = svc


def services(app: App | None = None) -> Services:
    """The current app's services; ``app`` for code that runs while an app is being set up,
    before there is a current one (a blueprint's ``record_once``)."""
    svc: Services = (app if app is not None else current_app).extensions[EXTENSION_KEY]
    return svc
