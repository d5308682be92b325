"""A job's input checked again in the worker, just before it is read.

The API checked the path when the job was submitted; by the time a worker reads it, the file or
a folder on its way may have been swapped. The check is repeated here, against the roots that
fit how the job arrived.
"""

from __future__ import annotations

from pathlib import Path

from shared.jobs.paths import resolve_allowed
from shared.jobs.records import job_dir
from shared.store.tables import Job
from worker.runtime import Runtime


def checked_input(rt: Runtime, job: Job) -> Path:
    """The input checked again, now (TOCTOU): since the API checked it, the file or a folder on
    its way may have been swapped for a symlink out of the roots, a FIFO or a device.

    The stored path is the one the API resolved, so an untouched file still resolves to exactly
    itself; anything else must land inside this worker's roots (an upload: its job folder).
    That keeps the legacy route's STT_DEFAULT_AUDIO, which may lie outside the roots, working.
    """
    stored = Path(job.input_path)
    if job.source == "upload":
        roots = [job_dir(rt.settings.data_dir, job.id)]
    elif _resolves_to_itself(stored):
        roots = [stored]  # still a file? (a FIFO or device in its place is refused)
    else:
        roots = list(rt.settings.allowed_audio_roots)
    return resolve_allowed(job.input_path, roots)


def _resolves_to_itself(path: Path) -> bool:
    try:
        return path.is_absolute() and path.resolve() == path
    except (OSError, RuntimeError):  # symlink loops
        return False
