"""What narrows a search to some jobs: the key that asks, status, creation time, batch and
metadata. Conditions on the jobs table, the same on both databases."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement

from shared.errors import ErrorCode, SttError
from shared.store.tables import Job, JobStatus


@dataclass(frozen=True, slots=True)
class Filters:
    owner: str | None = None  # an API key's name: only its jobs; None while the API is open
    status: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    batch_id: uuid.UUID | None = None
    metadata: dict[str, str] = field(default_factory=dict)  # string values, compared exactly

    def conditions(self) -> list[ColumnElement[bool]]:
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
        found += [Job.meta[key].as_string() == value for key, value in self.metadata.items()]
        return found
