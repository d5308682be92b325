"""A per-job lock held for as long as a run is alive, released by the OS when its process dies.

The jobs table says a job is ``processing`` but not whether the process running it still
exists. This lock does: a run holds it from before its claim until after its outcome is
written, and it vanishes with the process (a closed connection on PostgreSQL, a closed file
descriptor on SQLite's single host). Two things follow:

* a duplicate message (a redelivery, a reconciler's resend) never starts a second run beside
  a live one: whoever cannot take the lock drops the message;
* the reconciler tells a dead run from a live one at once, instead of waiting out the hard
  time limit or Redis's visibility timeout (hours for bulk jobs).

PostgreSQL: a session-level advisory lock on a connection kept for the run. The session asks
the server to probe the client with TCP keepalives, so a vanished host frees its locks in
about a minute. SQLite: ``flock`` on a file in the job's folder (removed with the job).
"""

from __future__ import annotations

import fcntl
import os
import uuid
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from shared.jobs.records import job_dir
from shared.settings import Settings

LOCK_FILE = ".run.lock"
# Server-side keepalives for the lock's session: a dead client is noticed within ~60 s.
_KEEPALIVES = text(
    "SELECT set_config('tcp_keepalives_idle', '30', false),"
    " set_config('tcp_keepalives_interval', '10', false),"
    " set_config('tcp_keepalives_count', '3', false)"
)


class RunLock(Protocol):
    def try_acquire(self) -> bool:
        """Take the lock without waiting; False if a live process holds it."""

    def release(self) -> None:
        """Give the lock back (also done by the OS if the process dies)."""


def for_job(settings: Settings, sessions: sessionmaker[Session], job_id: uuid.UUID) -> RunLock:
    engine = sessions.kw["bind"]
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine, job_id)
    return FileLock(job_dir(settings.data_dir, job_id) / LOCK_FILE)


def advisory_key(job_id: uuid.UUID) -> int:
    """A signed 64-bit key from the job id (PostgreSQL's bigint advisory lock space)."""
    return int.from_bytes(job_id.bytes[:8], "big", signed=True)


class AdvisoryLock:
    def __init__(self, engine: Engine, job_id: uuid.UUID) -> None:
        self._engine = engine
        self._key = advisory_key(job_id)
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        conn = self._engine.connect()
        try:
            conn.execute(_KEEPALIVES)
            taken = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key})
            got = bool(taken.scalar())
            conn.commit()  # the lock is the session's; no transaction stays open for the run
        except Exception:
            conn.invalidate()
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            conn.commit()
        except Exception:  # noqa: BLE001 - closing the session below frees the lock anyway
            conn.invalidate()
        finally:
            conn.close()


class FileLock:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock
