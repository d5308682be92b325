"""What narrows a search to some jobs: the key that asks, status, creation time, batch and
metadata. Conditions on the jobs table, the same on both databases.

A metadata filter's value is text and matches a stored value written the same way in JSON:
a string as itself, a number as written, ``true``/``false``. PostgreSQL's ``->>`` gives that
text; SQLite's ``json_extract`` turns a boolean into 1 or 0, so there the JSON type decides
(``json_type``), or ``vip=1`` would find ``{"vip": true}`` and ``vip=true`` would not."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, String, and_, func

from shared.errors import ErrorCode, SttError
from shared.store.tables import Job, JobStatus


@dataclass(frozen=True, slots=True)
class Filters:
    owner: str | None = None  # an API key's name: only its jobs; None while the API is open
    status: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    batch_id: uuid.UUID | None = None
    metadata: dict[str, str] = field(default_factory=dict)  # compared exactly, as JSON text

    def conditions(self, dialect: str) -> list[ColumnElement[bool]]:
        """``dialect``: the database's SQLAlchemy name (``sqlite``, ``postgresql``)."""
        found: list[ColumnElement[bool]] = []
        if self.owner is not None:
            found.append(Job.api_key_id == self.owner)
        if self.status is not None:
            if self.status not in {s.value for s in JobStatus}:
                raise SttError(ErrorCode.INVALID_REQUEST, f"unknown status {self.status!r}")
            found.append(Job.status == self.status)
        if self.created_after is not None:
            found.append(Job.created_at >= self.created_after)
        if self.created_before is not None:
            found.append(Job.created_at < self.created_before)
        if self.batch_id is not None:
            found.append(Job.batch_id == self.batch_id)
        found += [_metadata_is(key, value, dialect) for key, value in self.metadata.items()]
        return found


BOOLEANS = ("true", "false")


def _metadata_is(key: str, value: str, dialect: str) -> ColumnElement[bool]:
    text: ColumnElement[str] = Job.meta[key].as_string()
    if dialect != "sqlite":
        return text == value
    # The path as SQLAlchemy writes it for SQLite; json_type answers text.
    kind = func.json_type(Job.meta, f'$."{key}"', type_=String)
    if value in BOOLEANS:
        return kind == value
    return and_(text == value, kind.not_in(BOOLEANS))
