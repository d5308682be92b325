"""The trained tagger as the runtime loads it: int8 ONNX, and a manifest of checksums.

Dynamic int8 quantisation (weights int8, activations quantised on the fly) cuts the file to about
a quarter of fp32; the card's figures are measured on the int8 file that ships.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch
from onnxruntime.quantization import QuantType, quantize_dynamic

NAME = "vi-punct-4"
ARCHITECTURE = "two BiGRU taggers averaged, int8"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export(model: torch.nn.Module, args: argparse.Namespace) -> None:
    args.work.mkdir(parents=True, exist_ok=True)
    fp32 = args.work / "model-fp32.onnx"
    example = torch.ones(2, 16, dtype=torch.int64)
    torch.onnx.export(
        model,
        (example,),
        str(fp32),
        dynamo=False,
        input_names=["ids"],
        output_names=["punct", "case"],
        dynamic_axes={"ids": {0: "windows", 1: "tokens"}},
        opset_version=17,
    )
    quantize_dynamic(fp32, args.out / "model.onnx", weight_type=QuantType.QInt8)
    write_manifest(args.out)


def write_manifest(out: Path) -> None:
    files = {name: sha256(out / name) for name in ("model.onnx", "vocab.json")}
    manifest = {"name": NAME, "architecture": ARCHITECTURE, "sha256": files}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
