"""Speed and memory of long files: the first version's one-pass path against the service pipeline.

Usage (from the repository root)::

    python bench/speed.py                       # 10/60/300/1800 s: one-pass vs pipeline
    python bench/speed.py --quick               # 10 and 60 s only
    python bench/speed.py --durations 300 --compare   # pipeline per runtime/precision at 300 s
    python bench/speed.py --check               # accuracy of the fast path against fp32

The model is wav2vec2-base-SIZED (hidden 768, 12 layers, conv stack of the real checkpoint)
with random weights, built from a config and loaded back through ``from_pretrained``: its
compute is the real model's, so speed and memory are representative; its transcripts are not.
Test audio is the team's real Vietnamese clips looped with pauses, so speech detection finds
speech and chunks exist. Every measurement runs in its own subprocess: peak RSS is that
child's ``ru_maxrss`` (from ``os.wait4``), and wall time covers transcription, not model load.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLIPS = ROOT.parent / "shared" / "data" / "vi-speech"
WORK = ROOT / "var" / "bench"
RATE = 16_000
DURATIONS = (10, 60, 300, 1800)
VARIANTS = {  # --compare: name -> (STT_RUNTIME, STT_PRECISION, forced "conv/transformer" or "")
    "torch fp32 (exact baseline)": ("torch", "fp32", ""),
    "conv onnx-fp32, transformer onnx-int8": ("auto", "auto", "onnx-fp32/onnx-int8"),
    "conv torch-bf16, transformer onnx-int8": ("auto", "auto", "torch-bf16/onnx-int8"),
    "conv torch-fp32, transformer torch-bf16": ("auto", "auto", "torch-fp32/torch-bf16"),
    "conv torch-bf16, transformer torch-bf16": ("auto", "auto", "torch-bf16/torch-bf16"),
    "conv onnx-fp32, transformer onnx-fp32": ("onnx", "fp32", ""),
    "default: measured (auto/auto)": ("auto", "auto", ""),
}
# GFLOP per second of audio, base-size wav2vec2 at 25 s chunks, by where the default path runs it
GFLOP_CONV = 5.4  # conv feature encoder 4.9 + positional conv 0.5: fp32 (bf16 on native CPUs)
GFLOP_LINEAR = 8.5  # projections and feed-forward: int8 in ONNX Runtime
GFLOP_ATTENTION = 2.3  # activation-by-activation products: fp32


# --- model and audio ----------------------------------------------------------------------


def build_base_model(out: Path) -> Path:
    """wav2vec2-base geometry with the tests' Vietnamese vocabulary, saved for from_pretrained."""
    if (out / "model.safetensors").is_file():
        return out
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    from tests.tiny_models import VI_VOCAB, _bias_lm_head, build_tiny_wav2vec2

    build_tiny_wav2vec2(out)  # processor files (vocab, feature extractor) and model card
    config = Wav2Vec2Config(  # the library defaults are wav2vec2-base's geometry
        vocab_size=len(VI_VOCAB),
        pad_token_id=VI_VOCAB["<pad>"],
        bos_token_id=VI_VOCAB["<s>"],
        eos_token_id=VI_VOCAB["</s>"],
        feat_extract_norm="group",
        do_stable_layer_norm=False,
        layerdrop=0.0,
        mask_time_prob=0.0,
    )
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(config)
    _bias_lm_head(model)
    model.save_pretrained(out)
    return out


def clip_audio() -> list[np.ndarray]:
    clips = []
    for path in sorted(CLIPS.glob("*.wav")):
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
        if rate == RATE:
            clips.append(audio.mean(axis=1))
    if not clips:
        sys.exit(f"no 16 kHz clips found in {CLIPS}")
    return clips


def speech_file(seconds: int) -> Path:
    """Real clips looped, with 0.3-1.2 s pauses between them, written once as PCM_16 WAV."""
    path = WORK / "audio" / f"speech_{seconds}s.wav"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seconds)
    clips, parts, total, i = clip_audio(), [], 0, 0
    while total < seconds * RATE:
        pause = np.zeros(int(rng.uniform(0.3, 1.2) * RATE), np.float32)
        parts += [clips[i % len(clips)], pause]
        total += len(parts[-2]) + len(pause)
        i += 1
    audio = np.concatenate(parts)[: seconds * RATE]
    sf.write(path, audio, RATE, subtype="PCM_16")
    return path


# --- children: one measurement per process --------------------------------------------------


def child_one_pass(model: str, audio_path: str) -> dict:
    """The first version: whole file, fp32, one forward pass, argmax, batch_decode."""
    import torch
    from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor

    processor = Wav2Vec2Processor.from_pretrained(model)
    network = Wav2Vec2ForCTC.from_pretrained(model).eval()
    started, cpu = time.perf_counter(), _cpu_s()
    audio, _ = sf.read(audio_path, dtype="float32")
    audio = audio / max(float(np.abs(audio).max()), 1e-9)
    inputs = processor(audio, sampling_rate=RATE, return_tensors="pt")
    with torch.no_grad():
        logits = network(inputs.input_values).logits
    text = processor.batch_decode(torch.argmax(logits, dim=-1))[0]
    wall = time.perf_counter() - started
    return {"wall_s": wall, "cpu_s": _cpu_s() - cpu, "chars": len(text)}


def _cpu_s() -> float:
    """CPU seconds of this process, all threads: less sensitive than wall time to other
    processes on a shared machine (cpu_s / threads approximates an idle machine's wall)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_pipeline(model: str, audio_path: str, runtime: str, precision: str, pair: str) -> dict:
    """The service pipeline: build_transcriber once, then Transcriber.run on the file.

    ``pair`` ("conv/transformer" paths) pins both halves, which no setting does alone: the
    bench's way to time one combination the measurement would not pick here."""
    from shared.settings import load_settings
    from shared.speech.engines.base import DecodeOptions
    from shared.speech.pipeline import build_transcriber

    if pair:
        from shared.speech.device import ComputeChoices
        from shared.speech.engines.wav2vec2 import engine as wav2vec2

        conv, transformer = pair.split("/")
        wav2vec2.resolve_choices = lambda *_a: ComputeChoices((conv,), (transformer,))
    settings = load_settings(
        model=model, var_dir=WORK / "var", runtime=runtime, precision=precision
    )
    loaded = time.perf_counter()
    transcriber = build_transcriber(settings)
    load_s = time.perf_counter() - loaded
    out = WORK / "var" / f"processed-{os.getpid()}.wav"
    started, cpu = time.perf_counter(), _cpu_s()
    result = transcriber.run(Path(audio_path), out, 1e9, DecodeOptions())
    wall = time.perf_counter() - started
    out.unlink(missing_ok=True)
    return {
        "wall_s": wall,
        "cpu_s": _cpu_s() - cpu,
        "load_s": load_s,
        "chars": len(result.text),
        "plan": _label(transcriber),
    }


def _label(transcriber: object) -> str:
    return transcriber.engine.plan.describe()


def run_child(args: list[str], timeout: float) -> dict:
    """Run this script as a child; its JSON result plus its own peak RSS (``wait4``)."""
    cmd = [sys.executable, __file__, "--child", json.dumps(args)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            return {"error": f"timed out after {timeout:.0f} s"}
        time.sleep(0.05)
    out = proc.stdout.read().decode() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        return {"error": f"exit {os.waitstatus_to_exitcode(status)}"}
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024
    return result


def child_main(payload: str) -> None:
    import torch

    from shared.speech.device import cpu_threads

    torch.set_num_threads(cpu_threads())
    kind, *rest = json.loads(payload)
    result = child_one_pass(*rest) if kind == "one-pass" else child_pipeline(*rest)
    print(json.dumps(result), flush=True)


# --- the parent: tables ----------------------------------------------------------------------


@dataclass
class Row:
    duration: int
    path: str
    result: dict

    def cells(self, baseline: float | None) -> list[str]:
        if "wall_s" not in self.result:
            return [f"{self.duration}", self.path, "-", "-", "-", self.result.get("error", "")]
        wall = self.result["wall_s"]
        speedup = f"{baseline / wall:.1f}x" if baseline else "-"
        rtf = wall / self.duration
        return [
            f"{self.duration}",
            self.path,
            f"{wall:.1f}",
            f"{rtf:.4f}",
            f"{self.result['peak_mb']:.0f}",
            speedup,
            f"{self.result['cpu_s']:.0f}",
        ]


def print_table(rows: list[Row], baselines: dict[int, float]) -> None:
    header = ["duration s", "path", "wall s", "RTF", "peak RSS MB", "speedup", "CPU s"]
    lines = [header, ["---"] * len(header)]
    lines += [row.cells(baselines.get(row.duration)) for row in rows]
    for line in lines:
        print("| " + " | ".join(line) + " |")


def one_pass_estimate_mb(measured: dict[int, float], seconds: int) -> float:
    """Peak RSS of one pass at ``seconds``: a quadratic through the measured points (attention
    is quadratic in length), or the issue's 300 s figure scaled when fewer were measured."""
    points = sorted(measured.items())
    if len(points) >= 3:
        xs, ys = zip(*points[-3:], strict=True)
        coeffs = np.polyfit(np.array(xs, float), np.array(ys, float), 2)
        return float(np.polyval(coeffs, seconds))
    return 5800.0 * (seconds / 300) ** 2


def available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def warm_up(model: str, variants: list[tuple[str, str, str]]) -> None:
    """One untimed pipeline run per variant, so ONNX exports and the measured choice land in
    the cache before the timed runs (a first start's exports and timing would otherwise show
    up in the path's peak RSS)."""
    audio = str(speech_file(10))
    for runtime, precision, pair in variants:
        run_child(["pipeline", model, audio, runtime, precision, pair], 1200)


def speed_table(model: str, durations: list[int], one_pass_limit_s: int) -> None:
    warm_up(model, [("auto", "auto", "")])
    rows: list[Row] = []
    baselines: dict[int, float] = {}
    peaks: dict[int, float] = {}
    for seconds in durations:
        audio = str(speech_file(seconds))
        need = one_pass_estimate_mb(peaks, seconds)
        if seconds > one_pass_limit_s or need > 0.8 * available_mb():
            note = f"not run (would need ~{need / 1024:.0f} GB)"
            rows.append(Row(seconds, "one-pass fp32", {"error": note}))
        else:
            result = run_child(["one-pass", model, audio], timeout=max(600, seconds * 3))
            rows.append(Row(seconds, "one-pass fp32", result))
            if "wall_s" in result:
                baselines[seconds], peaks[seconds] = result["wall_s"], result["peak_mb"]
        result = run_child(["pipeline", model, audio, "auto", "auto", ""], max(600, seconds))
        rows.append(Row(seconds, f"pipeline ({result.get('plan', 'default')})", result))
        print(f"  done {seconds} s", file=sys.stderr, flush=True)
    print_table(rows, baselines)
    rtfs = {
        r.duration: r.result["wall_s"] / r.duration
        for r in rows
        if r.path.startswith("pipeline") and "wall_s" in r.result
    }
    print_floor(rtfs.get(300) or (min(rtfs.values()) if rtfs else None))


def compare_table(model: str, seconds: int) -> None:
    audio = str(speech_file(seconds))
    warm_up(model, list(VARIANTS.values()))
    rows = []
    for name, (runtime, precision, pair) in VARIANTS.items():
        result = run_child(["pipeline", model, audio, runtime, precision, pair], 1200)
        label = f"{name} -> {result['plan']}" if pair == "" and "plan" in result else name
        rows.append(Row(seconds, label, result))
        print(f"  done {name}", file=sys.stderr, flush=True)
    fp32 = rows[0].result.get("wall_s")
    print_table(rows, {seconds: fp32} if fp32 else {})
    print("(speedup column here: against the pipeline in torch fp32)")
    print_measurement()


def print_measurement() -> None:
    """What the worker's start-up measurement timed here (per half, on its probe audio)."""
    records = sorted((WORK / "var" / "cache" / "onnx").glob("*/tuning-*.json"))
    for path in records:
        record = json.loads(path.read_text())
        print(f"\nstart-up measurement ({path.parent.name[:12]}..., {record['cpu']}):")
        for half in ("conv", "transformer"):
            timed = ", ".join(f"{k} {v:.0f} ms" for k, v in record[f"{half}_ms"].items())
            print(f"  {half}: {timed} -> {record[half]}")


def _best_s(run: object, repeats: int = 10) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best


def measured_rates() -> dict[str, float]:
    """GFLOP/s of one 1250x768 @ 768x3072 matmul (a feed-forward layer on a 25 s chunk) in
    torch fp32, torch bf16 and ONNX Runtime dynamic int8, on this CPU with 2 threads."""
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    flop, rates = 2 * 1250 * 768 * 3072, {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, w = torch.randn(1250, 768, dtype=dtype), torch.randn(3072, 768, dtype=dtype)
        rates[name] = flop / _best_s(lambda a=a, w=w: torch.nn.functional.linear(a, w)) / 1e9
    weight = numpy_helper.from_array(np.random.randn(768, 3072).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "w"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1250, 768])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1250, 3072])],
        [weight],
    )
    fp32, int8 = WORK / "matmul.onnx", WORK / "matmul.int8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), fp32)
    logging.disable(logging.WARNING)  # the quantiser's advice to pre-process: not for one MatMul
    quantize_dynamic(fp32, int8, per_channel=True, weight_type=QuantType.QInt8)
    logging.disable(logging.NOTSET)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])
    a = np.random.randn(1250, 768).astype(np.float32)
    rates["int8"] = flop / _best_s(lambda: session.run(None, {"a": a})) / 1e9
    return rates


def print_floor(best_rtf: float | None) -> None:
    """The issue's floor (FLOP per second of audio over matmul throughput), per this CPU."""
    rates = measured_rates()
    print(
        "\nmatmul throughput here, GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in rates.items())
    )
    conv_rate = max(rates["fp32"], rates["bf16"])
    floor = GFLOP_CONV / conv_rate + GFLOP_LINEAR / rates["int8"] + GFLOP_ATTENTION / rates["fp32"]
    everything_int8 = (GFLOP_CONV + GFLOP_LINEAR + GFLOP_ATTENTION) / rates["int8"]
    print(
        f"floor of the default path on this CPU: RTF ~{floor:.3f} "
        f"(every FLOP at the int8 rate: ~{everything_int8:.3f})"
    )
    if best_rtf:
        print(f"pipeline RTF measured: {best_rtf:.4f} = {best_rtf / floor:.2f}x the floor")


# --- accuracy ----------------------------------------------------------------------------------


def accuracy_check(model: str, threshold: float = 0.95, default_threshold: float = 0.95) -> bool:
    """Every path the start-up measurement may pick, each half with the other in fp32, and the
    path picked here: frame agreement of argmax and transcript equality against torch fp32 over
    the clips. A path under ``threshold`` fails the check (and must leave the candidate lists
    in ``shared/speech/device.py``); the picked pair must reach ``default_threshold``."""
    import jiwer

    from shared.speech.device import CONV_PATHS, TRANSFORMER_PATHS, ComputeChoices
    from shared.speech.engines.base import DecodeOptions
    from shared.speech.engines.wav2vec2 import engine as wav2vec2
    from shared.speech.engines.wav2vec2.engine import Wav2Vec2Engine

    cache = WORK / "var" / "cache" / "onnx"
    resolve = wav2vec2.resolve_choices

    def pinned(conv: str, transformer: str) -> Wav2Vec2Engine:
        wav2vec2.resolve_choices = lambda *_a: ComputeChoices((conv,), (transformer,))
        try:
            return Wav2Vec2Engine(model, device="cpu", cache_dir=cache)
        finally:
            wav2vec2.resolve_choices = resolve

    reference = Wav2Vec2Engine(model, device="cpu", precision="fp32", runtime="torch")
    candidates = {f"conv {p}": (p, "torch-fp32") for p in CONV_PATHS}
    candidates |= {f"transformer {p}": ("torch-fp32", p) for p in TRANSFORMER_PATHS}
    clips = [c / max(float(np.abs(c).max()), 1e-9) for c in clip_audio()]
    ref = [reference.logits([c])[0] for c in clips]
    ref_text = [reference.decode(lp, DecodeOptions()).text for lp in ref]
    passed = True
    print("| path | frame agreement | transcripts equal | CER vs fp32 | check |")
    print("| --- | --- | --- | --- | --- |")
    engines = {name: pinned(*pair) for name, pair in candidates.items()}
    engines["picked here"] = Wav2Vec2Engine(model, device="cpu", cache_dir=cache)
    for name, engine in engines.items():
        out = [engine.logits([c])[0] for c in clips]
        same = sum(int((a.argmax(-1) == b.argmax(-1)).sum()) for a, b in zip(out, ref, strict=True))
        agreement = same / sum(len(r) for r in ref)
        texts = [engine.decode(lp, DecodeOptions()).text for lp in out]
        equal = sum(a == b for a, b in zip(texts, ref_text, strict=True))
        need = default_threshold if name == "picked here" else threshold
        ok = agreement >= need
        passed &= ok
        label = f"{name} ({engine.plan.describe()})" if name == "picked here" else name
        print(
            f"| {label} | {agreement:.2%} | {equal}/{len(clips)} | "
            f"{jiwer.cer(ref_text, texts):.2%} | {'pass' if ok else 'FAIL'} (>= {need:.0%}) |"
        )
    print(f"\nevery candidate path and the picked pair: {'PASS' if passed else 'FAIL'}")
    return passed


def main() -> None:
    if "--engine" in sys.argv:  # the Conformer's own bench: the SDK against our engine
        at = sys.argv.index("--engine")
        if sys.argv[at + 1 : at + 2] == ["conformer"]:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from bench.conformer_speed import main as conformer_main

            sys.exit(conformer_main(sys.argv[1:at] + sys.argv[at + 2 :]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--durations", help="comma-separated seconds (default 10,60,300,1800)")
    parser.add_argument("--quick", action="store_true", help="10 and 60 s only")
    parser.add_argument("--compare", action="store_true", help="runtimes/precisions, pipeline")
    parser.add_argument("--check", action="store_true", help="accuracy of the fast path")
    parser.add_argument("--model", help="a saved wav2vec2 CTC dir (default: built base-size)")
    parser.add_argument("--one-pass-limit", type=int, default=300, help="longest one-pass run, s")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args.child)
    model = args.model or str(build_base_model(WORK / "w2v-base-random"))
    durations = [int(d) for d in args.durations.split(",")] if args.durations else None
    durations = durations or ([10, 60] if args.quick else list(DURATIONS))
    print(f"cpu threads {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at start")
    timed = args.compare or args.durations or args.quick or not args.check
    # Timed tables first: a child's ru_maxrss starts at its parent's RSS at fork (Linux keeps
    # the high-water mark across exec), so the check's engines in this process would inflate it.
    if args.compare:
        compare_table(model, durations[-1] if args.durations else (60 if args.quick else 300))
    elif timed:
        speed_table(model, durations, args.one_pass_limit)
    ok = accuracy_check(model) if args.check else True
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
