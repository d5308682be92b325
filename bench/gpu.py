"""GPU bench: seconds of audio each engine gets through per wall second at each batch size, and
the memory that takes, so a GPU host's STT_BATCH_SIZE comes from a measurement.

    bench/gpu.sh                          # every engine this host can run, on CUDA when present
    bench/gpu.sh --device cpu --quick     # dry run of the same code paths on CPU (1-2 min)

Each engine runs in its own child process, so its memory figures are its own and a crash in one
runtime keeps the other engines' rows. Only model calls are timed (features, model, log-probs
back on the host): speech detection and decoding run on the CPU whatever the batch size, and
would hide what the batch size changes. See bench/README.md for preparing a GPU host.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import wave
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CARRY = ROOT / "var" / "gpu"  # travels to the GPU host: wheels, the Conformer's wheel, clips
WORK = ROOT / "var" / "gpu-work"  # made there: installed wheels, models, logs, the table
TEAM_CLIPS = ROOT.parent / "shared" / "data" / "vi-speech"
RATE = 16_000
TIMEOUT_S = {"conformer": 130, "wav2vec2": 100, "whisper": 50}  # the whole run under 5 min
Call = Callable[[list[np.ndarray]], object]
Loaded = tuple[str, Call, Callable[[int], None], bool]  # runtime, call, set batch, torch CUDA


@dataclass
class Row:
    engine: str
    runtime: str
    batch: int
    audio_s: float
    wall_s: float
    alloc_mb: float | None = None  # torch.cuda.max_memory_allocated (torch engines on CUDA)
    used_mb: float | None = None  # nvidia-smi memory.used of the device, or peak RSS on CPU
    lengths: str = "equal"

    @property
    def multiple(self) -> float:
        return self.audio_s / self.wall_s if self.wall_s > 0 else 0.0


def choose_batch(rows: list[Row], budget_mb: float, tolerance: float = 0.05) -> int | None:
    """Among equal-length rows whose known memory fits the budget, the smallest batch within
    ``tolerance`` of the best real-time multiple: a larger batch makes a job's chunks wait for
    company and holds more memory, so a gain inside a short bench's noise does not pay for it."""
    fits = [
        r
        for r in rows
        if r.wall_s > 0
        and r.lengths == "equal"
        and max(r.alloc_mb or 0.0, r.used_mb or 0.0) <= budget_mb
    ]
    best = max((r.multiple for r in fits), default=0.0)
    return min((r.batch for r in fits if r.multiple >= best * (1 - tolerance)), default=None)


class Skipped(Exception):
    """An engine this host cannot run as asked; the message says why."""


def read_clips(folder: Path) -> list[np.ndarray]:
    """16-bit PCM WAVs through the standard library (the host may lack soundfile), at 16 kHz;
    linear resampling is enough, as the models' work depends on the length, not the content."""
    clips = []
    for path in sorted(folder.glob("*.wav")) if folder.is_dir() else []:
        with wave.open(str(path)) as wav:
            raw = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
            audio, rate = raw.reshape(-1, wav.getnchannels()).mean(1) / 32768, wav.getframerate()
        grid = np.arange(0, len(audio), rate / RATE)
        clips.append(np.interp(grid, np.arange(len(audio)), audio).astype(np.float32))
    return clips


def synthetic_speech(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Syllable-like bursts (a 90-250 Hz harmonic series, 0.12-0.35 s, Hann envelope) with
    short gaps and phrase pauses, for hosts that got no recordings."""
    parts: list[np.ndarray] = []
    total = 0
    while total < seconds * RATE:
        n = int(rng.uniform(0.12, 0.35) * RATE)
        phase = 2 * np.pi * np.cumsum(rng.uniform(90, 250) * np.linspace(1, 1.2, n)) / RATE
        voice = sum(np.sin(k * phase) * rng.uniform(0.2, 1) / k for k in range(1, 16))
        gap = rng.uniform(0.3, 1.0) if rng.random() < 0.12 else rng.uniform(0.03, 0.15)
        parts += [voice * np.hanning(n) * 0.3, np.zeros(int(gap * RATE))]
        total += n + len(parts[-1])
    audio = np.concatenate(parts)
    return (audio + rng.normal(0, 0.002, len(audio))).astype(np.float32)


def audio_source(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, str]:
    """``seconds`` or more of audio: the carried (here, the team's) clips joined with 0.3-1.2 s
    pauses and looped, else synthetic; and a line saying which."""
    for folder in (CARRY / "clips", TEAM_CLIPS):
        if clips := read_clips(folder):
            parts: list[np.ndarray] = []
            while sum(map(len, parts)) < seconds * RATE:
                for clip in clips:
                    parts += [clip, np.zeros(int(rng.uniform(0.3, 1.2) * RATE), np.float32)]
            return np.concatenate(parts), f"real speech, {len(clips)} clips of {folder}, looped"
    loop = synthetic_speech(min(seconds, 120), rng)  # repeated: the compute is per sample
    audio = np.tile(loop, int(seconds * RATE) // len(loop) + 1)
    return audio, "SYNTHETIC speech-like audio (no clips found)"


def cut(source: np.ndarray, lengths_s: list[float]) -> list[np.ndarray]:
    ends = np.cumsum([int(s * RATE) for s in lengths_s])
    return [source[end - int(s * RATE) : end] for end, s in zip(ends, lengths_s, strict=True)]


def load_conformer(device: str, opts: dict) -> Loaded:
    """The service's engine on its default settings, single-job path (not the shared batch)."""
    import onnxruntime as ort

    if device != "cpu" and "CUDAExecutionProvider" not in ort.get_available_providers():
        raise Skipped(f"onnxruntime {ort.__version__} has no CUDAExecutionProvider here")
    from shared.speech.engines.conformer.engine import ConformerEngine
    from shared.speech.models.conformer import MODEL_DIRNAME, assemble_from_wheel
    from shared.speech.models.wheel_fetch import default_cache_dir

    folder = Path(opts["conformer_model"] or default_cache_dir() / MODEL_DIRNAME)
    if not (folder / "model.onnx").is_file():
        if not (wheels := sorted((CARRY / "model").glob("viet_asr-*.whl"))):
            raise Skipped("no model: carry var/gpu (bench/gpu.sh --prepare)")
        folder = assemble_from_wheel(wheels[-1], WORK / "models")
    engine = ConformerEngine(str(folder), device=device, shared=False, optimization="auto")
    active = engine.session.get_providers()[0].removesuffix("ExecutionProvider")
    if device != "cpu" and active != "CUDA":  # ORT falls back to CPU when CUDA libs are missing
        raise Skipped(f"ONNX Runtime fell back to {active} though the engine says {device}")

    def set_batch(batch: int) -> None:
        engine.preferred_batch_size = batch

    return f"onnxruntime {active}", engine.logits, set_batch, False


def load_wav2vec2(device: str, opts: dict) -> Loaded:
    """wav2vec2-base geometry with random weights (bench/speed.py's), on torch with its
    precision (autocast on a GPU; measured per half on a CPU) and its batching (only
    equal-length chunks share a call)."""
    from bench.speed import build_base_model
    from shared.speech.engines.wav2vec2.engine import Wav2Vec2Engine

    model = opts["wav2vec2_model"] or str(build_base_model(ROOT / "var/bench/w2v-base-random"))
    cache = ROOT / "var" / "bench" / "var" / "cache" / "onnx"
    engine = Wav2Vec2Engine(model, device=device, runtime="torch", cache_dir=cache)

    def set_batch(batch: int) -> None:
        engine.batch_size = batch

    return engine.info.compute or "torch", engine.logits, set_batch, engine.device.type == "cuda"


def load_whisper(device: str, opts: dict) -> Loaded:
    """faster-whisper decodes one file at a time in the service: batch 1 only."""
    try:
        import ctranslate2
        import faster_whisper  # noqa: F401
    except ImportError as exc:
        raise Skipped(f"{exc.name} not installed (its wheels are too large to carry)") from exc
    if device != "cpu" and ctranslate2.get_cuda_device_count() == 0:
        raise Skipped(f"ctranslate2 {ctranslate2.__version__} sees no CUDA device")
    from shared.speech.engines.base import DecodeOptions
    from shared.speech.engines.whisper.engine import WhisperEngine
    from shared.speech.models.wheel_fetch import default_cache_dir

    folder = Path(opts["whisper_model"] or default_cache_dir() / "whisper-base")
    if not (folder / "model.bin").is_file():
        raise Skipped(f"no CTranslate2 Whisper model in {folder} (--whisper-model DIR)")
    # CTranslate2 takes "cuda" and an index, not torch's "cuda:N"
    engine = WhisperEngine(str(folder), device="cpu" if device == "cpu" else "cuda")
    options = DecodeOptions(language="vi")

    def call(pieces: list[np.ndarray]) -> object:
        return [engine.transcribe_file_audio(piece, options) for piece in pieces]

    return f"ctranslate2 {engine.compute_type}", call, lambda batch: None, False


def nvidia_smi(fields: str) -> str | None:
    command = ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip().splitlines() or [None])[0]


def measure(
    call: Call, pieces: list[np.ndarray], batch: int, opts: dict, torch_cuda: bool
) -> tuple[float, float | None, float | None]:
    """Best wall time of the repeats after a short warm-up at this batch (kernels, allocator,
    arenas); torch's peak, and the device's used memory (on CPU: this process's peak RSS).
    Torch's cache is emptied after reading, so each row's device figure is its own."""
    import torch

    call([p[: 4 * RATE] for p in pieces[:batch]])
    sync = torch.cuda.synchronize if torch_cuda else lambda: None
    if torch_cuda:
        torch.cuda.reset_peak_memory_stats()
    walls = []
    for _ in range(opts["repeats"]):
        sync()
        started = time.perf_counter()
        call(pieces)
        sync()
        walls.append(time.perf_counter() - started)
    alloc = torch.cuda.max_memory_allocated() / 2**20 if torch_cuda else None
    if opts["device"] == "cpu":
        used: float | None = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    else:  # device-wide: what ONNX Runtime's and CTranslate2's own allocators hold shows here
        used = float(smi) if (smi := nvidia_smi("memory.used")) else None
    if torch_cuda:
        torch.cuda.empty_cache()
    return min(walls), alloc, used


def child(opts: dict) -> None:
    """One engine; each row printed as a JSON line as soon as it exists, so a timeout keeps the
    rows measured. An error (out of memory at a large batch) ends the rows and is reported."""
    name, emit = opts["engine"], lambda record: print(json.dumps(record), flush=True)
    try:
        runtime, call, set_batch, torch_cuda = LOADERS[name](opts["device"], opts)
    except Exception as exc:  # noqa: BLE001 - reported in the table, not fatal
        why = str(exc) if isinstance(exc, Skipped) else f"error: {type(exc).__name__}: {exc}"
        return emit({"skipped": why[:400]})
    rng = np.random.default_rng(0)
    count, seconds = opts["pieces"], opts["piece_s"]
    varied = [float(s) for s in rng.uniform(8, 25, count)]  # pause-cut chunks: lengths differ
    source, _ = audio_source(rng, count * seconds + sum(varied))
    # at least 8 pieces and 4 calls' worth per row, so small batches do not eat the time limit
    sizes = {b: min(count, max(8, 4 * b)) for b in opts["batches"]}
    runs = [(b, cut(source, [seconds] * n), "equal") for b, n in sizes.items()]
    rows: list[Row] = []
    for batch, pieces, lengths in runs[:1] if name == "whisper" else runs:
        set_batch(batch)
        try:
            wall, alloc, used = measure(call, pieces, batch, opts, torch_cuda)
        except Exception as exc:  # noqa: BLE001
            return emit({"skipped": f"error at batch {batch}: {type(exc).__name__}: {exc}"[:400]})
        audio_s = sum(map(len, pieces)) / RATE
        rows.append(Row(name, runtime, batch, audio_s, wall, alloc, used, lengths))
        emit(asdict(rows[-1]))
        chosen = choose_batch(rows, opts["budget_gb"] * 1024)
        if chosen and lengths == "equal" and batch == opts["batches"][-1] and name != "whisper":
            runs.append((chosen, cut(source[count * seconds * RATE :], varied), "varied 8-25 s"))


LOADERS = {"conformer": load_conformer, "wav2vec2": load_wav2vec2, "whisper": load_whisper}


def run_child(opts: dict) -> list[dict]:
    log = WORK / f"{opts['engine']}.log"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(opts)]
    with log.open("w") as err:
        try:
            done = subprocess.run(
                command, stdout=subprocess.PIPE, stderr=err, text=True,
                timeout=TIMEOUT_S[opts["engine"]], cwd=ROOT,
            )  # fmt: skip
            out, failed = done.stdout, done.returncode and f"exit {done.returncode}"
            if failed:  # a crash's last words (the exception line of a traceback)
                lines = log.read_text(errors="replace").strip().splitlines() or [""]
                failed += f": {lines[-1][:200]}"
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            failed = f"timed out after {exc.timeout:.0f} s"
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if failed:
        records.append({"skipped": f"error: {failed} (log: {log.relative_to(ROOT)})"})
    return records


def header(device: str, budget_gb: float) -> list[str]:
    """What the numbers depend on: GPU, driver, libraries, CPU, load, and the audio used."""
    import onnxruntime as ort
    import torch

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":")[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    ver = {p: _version(p) for p in ("transformers", "onnx", "ctranslate2", "faster-whisper")}
    return [
        f"- GPU: {nvidia_smi('name,driver_version,memory.total') or 'none'} (name, driver, MiB)",
        f"- python {platform.python_version()}, torch {torch.__version__} (CUDA "
        f"{torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}), numpy {np.__version__}, "
        + ", ".join(f"{p} {v}" for p, v in ver.items()),
        f"- onnxruntime {ort.__version__}, providers {ort.get_available_providers()}",
        f"- CPU: {cpu}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start",
        f"- device {device}, memory budget {budget_gb:.0f} GB; audio: "
        + audio_source(np.random.default_rng(0), 1)[1],
        "- timed: model calls only, best of the repeats after a warm-up; no VAD, no decoding",
    ]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto (cuda if torch sees one), cpu, cuda")
    parser.add_argument("--quick", action="store_true", help="4 pieces of 8 s, batch 1 and 4")
    parser.add_argument("--engines", default="conformer,wav2vec2,whisper")
    parser.add_argument("--batches", default="1,8,16,32,64")
    parser.add_argument("--pieces", type=int, default=64, help="equal pieces per row")
    parser.add_argument("--piece-s", type=int, default=20, help="seconds per piece")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--budget-gb", type=float, default=0, help="default: half the GPU (RAM)")
    for model in ("conformer", "wav2vec2", "whisper"):
        parser.add_argument(f"--{model}-model", help=f"a {model} model dir instead of the default")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(json.loads(args.child))
    import torch

    cuda = torch.cuda.is_available()
    device = args.device if args.device != "auto" else "cuda" if cuda else "cpu"
    if args.quick:
        args.pieces, args.piece_s, args.batches, args.repeats = 4, 8, "1,4", 1
    if not args.budget_gb:  # nvidia-smi, not torch: a CUDA context here would hold GPU memory
        smi = nvidia_smi("memory.total") if device != "cpu" else None
        pages = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
        args.budget_gb = float(smi or pages) / 2 / 1024
    WORK.mkdir(parents=True, exist_ok=True)
    opts = {**vars(args), "device": device, "batches": [int(b) for b in args.batches.split(",")]}
    memory = "peak RSS MB" if device == "cpu" else "GPU used MB (nvidia-smi)"
    lines = ["# GPU bench", "", *header(device, args.budget_gb), ""]
    lines += [
        f"| engine | runtime | batch | audio s | wall s | x real time | torch peak MB | {memory} |",
        "|---" * 8 + "|",
    ]
    chosen = []
    for name in args.engines.split(","):
        records = run_child({**opts, "engine": name})
        rows = [Row(**r) for r in records if "skipped" not in r]
        for r in rows:
            mb = [f"{m:.0f}" if m is not None else "-" for m in (r.alloc_mb, r.used_mb)]
            batch = str(r.batch) + ("" if r.lengths == "equal" else f" ({r.lengths})")
            lines.append(
                f"| {name} | {r.runtime} | {batch} | {r.audio_s:.0f} | {r.wall_s:.2f} | "
                f"{r.multiple:.1f} | {mb[0]} | {mb[1]} |"
            )
        skipped = [r["skipped"] for r in records if "skipped" in r]
        lines += [f"| {name} | skipped: {why} |" + " |" * 6 for why in skipped]
        pick = choose_batch(rows, args.budget_gb * 1024)
        chosen.append(f"- {name}: {pick if pick else 'nothing measured'}")
        print(f"  {name} done", file=sys.stderr, flush=True)
    lines += ["", "Chosen batch size (smallest within 5 % of the best x real time, in budget):"]
    lines += chosen + [f"- load average {os.getloadavg()[0]:.2f} at end"]
    print("\n".join(lines))
    (WORK / "gpu-bench.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
