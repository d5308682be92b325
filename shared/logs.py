"""Logging set-up shared by the API and workers: text by default, JSON when STT_LOG_FORMAT=json."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from shared.settings import Settings

#: The job a request handler or worker task is busy with; stamped on its log records.
JOB_ID: ContextVar[str | None] = ContextVar("stt_job_id", default=None)


@contextmanager
def job_log_context(job_id: object) -> Iterator[None]:
    """Every record logged inside (this thread or task) carries ``job_id``."""
    token = JOB_ID.set(str(job_id))
    try:
        yield
    finally:
        JOB_ID.reset(token)


class JobIdFilter(logging.Filter):
    """Adds ``job_id`` from the context, so one grep follows a job through API and worker."""

    def filter(self, record: logging.LogRecord) -> bool:
        job_id = JOB_ID.get()
        if job_id is not None and not hasattr(record, "job_id"):
            record.job_id = job_id
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("job_id", "worker"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(JobIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
