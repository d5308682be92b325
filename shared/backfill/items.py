"""What a backfill is made of: the items asked for, what became of each, and the tally.

Both the command-line run and ``POST /v1/batches`` speak in these terms; the tally is what a
batch row stores of what only the submitter knows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared.errors import SttError

REJECTED_KEPT = 100  # rejected items stored on the batch row; the rest are only counted


class ItemState(StrEnum):
    QUEUED = "queued"  # sent by this submission: new, recovered or retried
    EXISTING = "existing"  # an earlier job for the same content, model and options answers it
    REJECTED = "rejected"  # refused at the door: path, format or unreadable
    IGNORED = "ignored"  # found by walking a folder, but not audio


@dataclass(frozen=True, slots=True)
class Item:
    path: str
    meta: dict[str, Any] = field(default_factory=dict)
    walked: bool = False  # found by walking a folder: non-audio files are ignored, not rejected


@dataclass(slots=True)
class Outcome:
    item: Item
    state: ItemState
    job_id: uuid.UUID | None = None
    job_status: str | None = None
    error: SttError | None = None
    recovered: bool = False

    def to_json(self) -> dict[str, Any]:
        error = self.error.to_dict()["error"] if self.error else None
        job_id = str(self.job_id) if self.job_id else None
        return {
            "path": self.item.path, "status": self.state.value, "job_id": job_id,
            "job_status": self.job_status, "error": error,
        }


@dataclass(slots=True)
class Tally:
    """What the submitter did with each item; stored on the batch row."""

    found: int = 0
    queued: int = 0
    recovered: int = 0
    existing: int = 0
    rejected: int = 0
    ignored: int = 0
    rejected_items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.queued + self.existing + self.rejected + self.ignored

    def add(self, outcome: Outcome) -> None:
        state = outcome.state
        if state is ItemState.QUEUED:
            self.queued += 1
            self.recovered += outcome.recovered
        elif state is ItemState.EXISTING:
            self.existing += 1
        elif state is ItemState.IGNORED:
            self.ignored += 1
        else:
            self.rejected += 1
            if len(self.rejected_items) < REJECTED_KEPT:
                self.rejected_items.append(outcome.to_json())
