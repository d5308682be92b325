"""The Conformer's accuracy gate: which compute paths the start-up measurement may time on this CPU.

Why: a faster path (ONNX Runtime's ``all`` level, the int8 front-end convolution) changes a few
low-confidence words, and which words depends on the kernels ONNX Runtime picks for this CPU's
instruction sets. Users need accuracy, not bit-identity with the vendor SDK, so a path is
admitted when, on the team's labelled speech, its WER is no worse than the shipped graph's at
``basic`` (the SDK's numerics) within 0.2 points, and its text still equals the SDK's on at least
25 of the 28 shared clips. Both sides are compared in one written form (``textnorm.normalize``
with numbers spelled out: lower case, no punctuation).

The labelled speech is every labelled clip (``../shared/data/vi-speech``, through the service's
pipeline: VAD, chunking, a batch of 8 streams in one lane or two, the default beam) plus the
same clips joined into one long file (1.0 s pauses), which the pipeline cuts and batches
differently. The oracle half decodes each of the 28 clips (labelled and unlabelled) whole, one
stream, like the SDK.

Usage::

    PYTHONPATH=. .venv/bin/python bench/conformer_gate.py [--model DIR] [--paths ...] [--write]

``--write`` records this CPU family's verdict in ``shared/speech/engines/conformer/gate.json``
(other families' verdicts are kept): the paths admitted, each path's figures, the runtime's
version and the date. Only the family of the CPU it ran on can be recorded.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.accuracy import Row, int16_16k, joined, read_manifest
from bench.conformer_speed import DATA, cpu_line
from shared.speech.engines.conformer.gate import (
    GATE_FILE,
    ORACLE_MIN_SAME,
    WER_MARGIN,
    path_lanes,
    read_gate,
    split_path,
)
from shared.speech.textnorm import normalize, wer_cer
from shared.speech.tuning import cpu_family, cpu_model

ONE_LANE = ("basic", "extended", "all", "extended+int8", "all+int8")  # basic first: the reference
PATHS = ONE_LANE + tuple(f"{p}+lanes2" for p in ONE_LANE[1:])  # basic runs the graph as shipped


def engine_for(model: str, path: str, **kwargs: object) -> object:
    from shared.speech.engines.conformer.engine import ConformerEngine

    level, int8 = split_path(path)
    precision = "int8" if int8 else "fp32"
    lanes = path_lanes(path)
    return ConformerEngine(
        model,
        "cpu",
        optimization=level,
        precision=precision,
        lanes=lanes,
        **kwargs,  # type: ignore[arg-type]
    )


def pipeline_texts(model: str, path: str, rows: list[Row]) -> list[str]:
    """Each row through the service's pipeline, decoded as the service decodes by default."""
    from shared.settings import load_settings
    from shared.speech.engines.base import DecodeOptions
    from shared.speech.pipeline import build_transcriber, default_decoding

    settings = load_settings(engine="conformer", model=model)
    engine = engine_for(model, path)
    transcriber = build_transcriber(settings, engine)  # type: ignore[arg-type]
    options = DecodeOptions(**default_decoding(engine, settings.decoder, settings.beam_width))  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        return [transcriber.run(r.path, Path(tmp) / "p.wav", 1e9, options).text for r in rows]


def oracle_texts(model: str, path: str, clips: list[Path]) -> list[str]:
    """Each clip whole, one stream, the SDK's layout and beam: what the oracle test runs."""
    from shared.speech.engines.base import DecodeOptions

    engine = engine_for(model, path, layout="sdk", batch_size=1)
    beam = DecodeOptions(decoder="beam", beam_width=8)
    audio = [int16_16k(c).astype(np.float32) / 32768 for c in clips]
    return [engine.transcribe_batch([a], beam)[0].text for a in audio]  # type: ignore[attr-defined]


def sdk_texts(clips: list[Path]) -> list[str]:
    import vietasr

    sdk = vietasr.Pipeline.preset("transcribe")
    return [sdk.transcribe(int16_16k(c)).text.strip() for c in clips]


def score(model: str, path: str, rows: list[Row], clips: list[Path], sdk: list[str]) -> dict:
    hyps = pipeline_texts(model, path, rows)
    refs = [r.reference for r in rows]
    wer, _ = wer_cer(refs, hyps, numbers=True)
    clip_wer, _ = wer_cer(refs[:-1], hyps[:-1], numbers=True)
    long_wer, _ = wer_cer(refs[-1:], hyps[-1:], numbers=True)
    ours = oracle_texts(model, path, clips)
    same = sum(normalize(a, True) == normalize(b, True) for a, b in zip(ours, sdk, strict=True))
    gc.collect()
    return {
        "wer": round(wer, 5),
        "clips_wer": round(clip_wer, 5),
        "long_wer": round(long_wer, 5),
        "oracle_same": same,
        "oracle_clips": len(clips),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model dir (default: the assembled one)")
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--write", action="store_true", help="record this family's verdict")
    args = parser.parse_args(argv)
    import onnxruntime as ort

    model = args.model or str(_assembled())
    manifest = DATA / "vi-speech" / "manifest.tsv"
    clip_rows = read_manifest(manifest)
    clips = sorted((DATA / "vi-speech").glob("*.wav")) + sorted(
        (DATA / "vi-unlabelled").glob("*.wav")
    )
    family = cpu_family()
    print(cpu_line())
    print(f"# family {family!r}; onnxruntime {ort.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        rows = [*clip_rows, joined(clip_rows, Path(tmp))]
        words = sum(len(normalize(r.reference, True).split()) for r in rows)
        clip_words = sum(len(normalize(r.reference, True).split()) for r in clip_rows)
        print(
            f"# {len(clip_rows)} labelled clips ({clip_words} words) + the same joined "
            f"({words - clip_words} words): {words} words, one word = {100 / words:.3f} points"
        )
        sdk = sdk_texts(clips)
        figures = {p: score(model, p, rows, clips, sdk) for p in args.paths.split(",")}
    verdict = judge(figures)
    print("| path | WER all | clips | long | vs basic | SDK text equal | verdict |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    base = figures["basic"]["wer"]
    for path, f in figures.items():
        print(
            f"| {path} | {100 * f['wer']:.2f} % | {100 * f['clips_wer']:.2f} % | "
            f"{100 * f['long_wer']:.2f} % | {100 * (f['wer'] - base):+.2f} | "
            f"{f['oracle_same']}/{f['oracle_clips']} | "
            f"{'admitted' if path in verdict else 'refused'} |"
        )
    print(f"# admitted on {family}: {', '.join(verdict)}")
    if args.write:
        record(family, verdict, figures, words, ort.__version__)
        print(f"# written to {GATE_FILE}")
    return 0


def judge(figures: dict[str, dict]) -> list[str]:
    """The admitted paths, the start-up measurement's candidates, in the order it ranks ties:
    the conservative levels first, then the faster ones."""
    base = figures["basic"]["wer"]
    order = ["extended", "basic", *(p for p in figures if p not in ("extended", "basic"))]
    return [
        p
        for p in order
        if p in figures
        and figures[p]["wer"] <= base + WER_MARGIN + 1e-9
        and figures[p]["oracle_same"] >= ORACLE_MIN_SAME
    ]


def record(family: str, admitted: list[str], figures: dict, words: int, ort: str) -> None:
    gate = read_gate()
    gate[family] = {
        "admitted": admitted,
        "onnxruntime": ort,
        "measured_on": cpu_model(),
        "measured_at": datetime.now(UTC).date().isoformat(),
        "words": words,
        "paths": figures,
    }
    GATE_FILE.write_text(json.dumps(gate, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _assembled() -> Path:
    from shared.speech.models.conformer import ensure_conformer
    from shared.speech.models.wheel_fetch import default_cache_dir

    return ensure_conformer(default_cache_dir())


if __name__ == "__main__":
    raise SystemExit(main())
