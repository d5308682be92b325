"""Static, calibrated int8 for the wav2vec2 conv front end: is it accurate enough to compete?

Usage (from the repository root)::

    python bench/static_int8.py                 # built base-size model, the team's clips
    python bench/static_int8.py --model DIR     # a saved wav2vec2 CTC directory

Why: dynamic int8 on the conv front end quantises each activation tensor by its own range and
dropped frame agreement with fp32 to 56 %. Static quantisation fixes each activation's range
from calibration audio instead and keeps the weights per output channel, which is the usual cure.
A path may only serve if frame agreement stays at least 97 %, so this measures exactly that:
the front end is exported alone (audio -> features), quantised with ONNX Runtime's
``quantize_static`` (QDQ, int8 weights per channel, activations calibrated on half of the real
clips), and each variant's features go through the same fp32 transformer as the reference's, on
the other half of the clips. The first conv (1 input channel, 0.7 % of the front end's work)
stays fp32 in every variant: raw audio at 8 bits loses quiet speech. One row per single layer
shows where the error comes from; torch bf16 is printed beside them as the known-good yardstick.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.speed import WORK, build_base_model, clip_audio  # noqa: E402

WINDOW = 32_000  # calibration windows of 2 s: the calibrators need equal shapes
THRESHOLD = 0.97


class ConvFrontEnd(torch.nn.Module):
    """Audio -> conv features, the part of wav2vec2 that would run in int8."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return self.network.wav2vec2.feature_extractor(values).transpose(1, 2)


def export(network: torch.nn.Module, out: Path) -> list[str]:
    torch.onnx.export(
        ConvFrontEnd(network).eval(),
        (torch.zeros(1, 16_000),),
        str(out),
        dynamo=False,
        input_names=["input_values"],
        output_names=["features"],
        dynamic_axes={"input_values": {0: "b", 1: "s"}, "features": {0: "b", 1: "f"}},
        opset_version=17,
    )
    import onnx

    return [n.name for n in onnx.load(str(out)).graph.node if n.op_type == "Conv"]


def quantize(
    src: Path, dst: Path, nodes: list[str], windows: list[np.ndarray], method: str
) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"input_values": w[None, :]} for w in windows])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    extra = {"CalibPercentile": 99.99} if method == "Percentile" else {}
    quantize_static(
        str(src),
        str(dst),
        Reader(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["Conv"],
        nodes_to_quantize=nodes,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=getattr(CalibrationMethod, method),
        extra_options=extra,
    )


def session(path: Path) -> object:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def agreement(network, features_of: Callable, reference_of: Callable, clips) -> float:  # noqa: ANN001
    """Share of frames whose argmax through the fp32 transformer matches the reference's."""
    core = network.wav2vec2

    def argmax(features: np.ndarray) -> torch.Tensor:
        hidden, _ = core.feature_projection(torch.from_numpy(np.asarray(features, np.float32)))
        return network.lm_head(core.encoder(hidden).last_hidden_state).argmax(-1)

    same = total = 0
    with torch.inference_mode():
        for clip in clips:
            ours, ref = argmax(features_of(clip)), argmax(reference_of(clip))
            same += int((ours == ref).sum())
            total += ref.numel()
    return same / total


def best_s(run: Callable[[], object], repeats: int = 4) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a saved wav2vec2 CTC dir (default: built base-size)")
    args = parser.parse_args()
    from transformers import Wav2Vec2ForCTC

    torch.set_num_threads(2)
    logging.disable(logging.WARNING)  # the quantiser's pre-processing advice, per variant
    model = args.model or str(build_base_model(WORK / "w2v-base-random"))
    network = Wav2Vec2ForCTC.from_pretrained(model).eval()
    clips = [(c - c.mean()) / (c.std() + 1e-7) for c in clip_audio()]  # as the processor does
    calibration, check = clips[::2], clips[1::2]
    windows = [c[i : i + WINDOW] for c in calibration for i in range(0, len(c) - WINDOW, WINDOW)]
    out = WORK / "static-int8"
    out.mkdir(parents=True, exist_ok=True)
    fp32_path = out / "conv.onnx"
    convs = export(network, fp32_path)
    fp32 = session(fp32_path)

    def run(s: object) -> Callable[[np.ndarray], np.ndarray]:
        return lambda clip: s.run(None, {"input_values": clip[None]})[0]  # type: ignore[attr-defined]

    def torch_bf16(clip: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return ConvFrontEnd(network)(torch.from_numpy(clip[None])).float().numpy()

    flags = next((ln for ln in open("/proc/cpuinfo") if ln.startswith("flags")), "")
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")
    print(f"cpu flags: {' '.join(f for f in flags.split() if f in wanted)}; threads 2")
    print(
        f"calibration: {len(windows)} windows of 2 s from {len(calibration)} clips; "
        f"checked on {len(check)} other clips"
    )
    ten_s = np.random.default_rng(0).standard_normal((1, 160_000)).astype(np.float32)
    print("\n| conv front end | frame agreement | 10 s of audio, s |\n| --- | --- | --- |")
    print(f"| onnx fp32 | 100% | {best_s(lambda: fp32.run(None, {'input_values': ten_s})):.3f} |")
    print(f"| torch bf16 autocast | {agreement(network, torch_bf16, run(fp32), check):.2%} | - |")
    variants = [(f"int8 conv{i} only, MinMax", [convs[i]], "MinMax") for i in range(1, len(convs))]
    variants += [
        (f"int8 conv1-{len(convs) - 1}, {m}", convs[1:], m) for m in ("MinMax", "Percentile")
    ]
    kept = []
    for name, nodes, method in variants:
        path = out / "conv.int8.onnx"
        quantize(fp32_path, path, nodes, windows, method)
        quantized = session(path)
        share = agreement(network, run(quantized), run(fp32), check)
        wall = best_s(lambda q=quantized: q.run(None, {"input_values": ten_s}))
        print(f"| {name} | {share:.2%} | {wall:.3f} |", flush=True)
        if share >= THRESHOLD and len(nodes) > 1:
            kept.append(name)
    verdict = ", ".join(kept) if kept else "none: the int8 conv front end is not kept"
    print(f"\nvariants at >= {THRESHOLD:.0%} frame agreement: {verdict}")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
