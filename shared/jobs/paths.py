"""Server-side audio paths: only regular files inside the allowed roots, checked after symlinks.

The check resolves the path first (following every symlink and ``..``) and only then compares it
with the resolved roots, so a link inside a root that points outside is refused like any other
escape. A path outside the roots is refused before its existence is looked at, so callers can't
probe the rest of the file system.
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from pathlib import Path

from shared.errors import ErrorCode, SttError


def resolve_allowed(raw: str, roots: Sequence[Path]) -> Path:
    if not raw or "\x00" in raw or not _encodable(raw):
        raise SttError(
            ErrorCode.INVALID_REQUEST, "audio_path is empty, contains a NUL byte or is not UTF-8"
        )
    try:
        candidate = Path(raw).expanduser()
        if not candidate.is_absolute():
            candidate = roots[0] / candidate if roots else candidate
        resolved = candidate.resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # symlink loops, "~nosuchuser"
        raise SttError(ErrorCode.PATH_NOT_ALLOWED, f"cannot resolve audio_path: {exc}") from exc
    if not any(resolved.is_relative_to(root.resolve()) for root in roots):
        raise SttError(
            ErrorCode.PATH_NOT_ALLOWED,
            "audio_path is outside the allowed audio roots (STT_ALLOWED_AUDIO_ROOTS)",
        )
    return ensure_regular_file(resolved)


def _encodable(raw: str) -> bool:
    """Lone surrogates would fail later, in the file system or the database, as a 500."""
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def ensure_regular_file(path: Path) -> Path:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise SttError(ErrorCode.FILE_NOT_FOUND, f"no such file: {path.name}") from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__  # not str(exc): it repeats the whole path
        raise SttError(ErrorCode.FILE_NOT_FOUND, f"cannot read {path.name}: {reason}") from exc
    if not stat.S_ISREG(mode):
        raise SttError(ErrorCode.NOT_A_FILE, f"{path.name} is not a regular file")
    return path
