"""Finding the files of a backfill: named files, folders walked in order, CSV manifests.

Discovery only lists candidates; whether a file is audio, and inside the allowed roots, is
decided file by file when it is submitted (``shared.backfill.submitter``).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from shared.backfill.items import Item
from shared.errors import ErrorCode, SttError


def discover(
    paths: Sequence[Path], glob: str | None, manifest: Path | None,
    meta: dict[str, Any], roots: Sequence[Path],
) -> list[Item]:
    """Every file named, found under a named folder, or listed in the manifest, in that order."""
    items: list[Item] = []
    for path in paths:
        path = path.absolute()
        if path.is_dir():
            _ensure_inside(path, roots)
            items.extend(_walk(path, glob, meta))
        else:
            items.append(Item(str(path), meta))
    if manifest is not None:
        items.extend(read_manifest(manifest, meta))
    return items


def _ensure_inside(folder: Path, roots: Sequence[Path]) -> None:
    """Refuse a folder outside the roots up front, rather than every file found in it."""
    resolved = folder.resolve()
    if not any(resolved.is_relative_to(root) for root in roots):
        raise SttError(
            ErrorCode.PATH_NOT_ALLOWED,
            f"{folder} is outside the allowed audio roots (STT_ALLOWED_AUDIO_ROOTS)",
        )


def _walk(folder: Path, glob: str | None, meta: dict[str, Any]) -> Iterator[Item]:
    """Sorted, so a re-run meets the files in the same order. Without a glob every file is a
    candidate and its content decides (as everywhere in the service), not its extension."""
    if glob:
        found = [p for p in folder.glob(glob) if p.is_file()]
    else:
        found = [Path(top) / name for top, _dirs, names in os.walk(folder) for name in names]
    return (Item(str(p), meta, walked=True) for p in sorted(found))


def read_manifest(manifest: Path, meta: dict[str, Any]) -> Iterator[Item]:
    """CSV with a ``path`` column (relative paths are relative to the manifest's folder); any
    other non-empty column becomes job metadata, over the command's own ``--metadata``."""
    with manifest.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if "path" not in (reader.fieldnames or []):
            raise SttError(ErrorCode.INVALID_REQUEST, f"{manifest} has no `path` column")
        for row in reader:
            raw = (row.pop("path") or "").strip()
            if not raw:
                continue
            extra = {k: v for k, v in row.items() if isinstance(k, str) and v not in (None, "")}
            path = Path(raw) if Path(raw).is_absolute() else manifest.absolute().parent / raw
            yield Item(str(path), {**meta, **extra})
