"""The service's own share of a job's time: its pipeline against the engine's own best call.

Why: a job's time should be the model's. Decoding the upload, peak-normalising, writing the
processed WAV, speech detection and stitching are the service's own work; this bench measures
what they add on real speech, in one process, both sides in the same run, alternated, best of
``--repeats``.

- ``whisper``: the service's ``Transcriber.run`` against faster-whisper's own
  ``WhisperModel.transcribe`` on the same file path with the same decoding options (the engine's
  own), i.e. faster-whisper decoding the file itself.
- ``conformer``: ``Transcriber.run`` against the engine's own time inside it (features, graph,
  CTC decoding; ``bench/conformer_speed.py``'s ``EngineClock``): everything else is overhead.

Usage::

    PYTHONPATH=. .venv/bin/python bench/overhead.py --engine whisper [--seconds 120] [--model M]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conformer_speed import RATE, EngineClock, build_audio, cpu_line  # noqa: E402

from shared.settings import Settings, load_settings  # noqa: E402
from shared.speech.engines.base import DecodeOptions  # noqa: E402
from shared.speech.pipeline import build_transcriber, default_decoding  # noqa: E402


def settings_for(engine: str, model: str | None) -> Settings:
    if model:
        return load_settings(engine=engine, model=model)
    if engine == "whisper":
        from shared.speech.models.whisper_base import default_cache_dir, ensure_whisper_base

        return load_settings(engine=engine, model=str(ensure_whisper_base(default_cache_dir())))
    from shared.speech.models.conformer import ensure_conformer

    model_dir = ensure_conformer(load_settings().model_cache_dir)
    return load_settings(engine=engine, model=str(model_dir))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", choices=["whisper", "conformer"], default="whisper")
    parser.add_argument("--model")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    settings = settings_for(args.engine, args.model)
    transcriber = build_transcriber(settings)
    engine = transcriber.engine
    options = DecodeOptions(**default_decoding(engine, settings.decoder, settings.beam_width))  # type: ignore[arg-type]
    print(cpu_line())
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "joined.wav"
        sf.write(wav, build_audio(args.seconds), RATE, subtype="PCM_16")
        service, native = float("inf"), float("inf")
        for _ in range(args.repeats):
            service_s, engine_s = run_service(transcriber, wav, Path(tmp) / "p.wav", options)
            service = min(service, service_s)
            if args.engine == "whisper":
                native = min(native, run_faster_whisper(engine, wav, options))
            else:
                native = min(native, engine_s)
    label = "faster-whisper's transcribe" if args.engine == "whisper" else "engine inside it"
    print(f"{args.engine}: {args.seconds:.0f} s of speech; service {service:.2f} s, "
          f"{label} {native:.2f} s; service/native {service / native:.3f}, "
          f"overhead {100 * (service - native) / service:.1f} % of the job's time")
    return 0


def run_service(transcriber, wav: Path, out: Path, options: DecodeOptions) -> tuple[float, float]:  # noqa: ANN001
    """Wall seconds of the whole pipeline, and the engine's own seconds inside it."""
    clock = EngineClock(transcriber.engine)
    engine, transcriber.engine = transcriber.engine, clock
    try:
        start = time.perf_counter()
        transcriber.run(wav, out, 1e9, options)
        return time.perf_counter() - start, clock.seconds
    finally:
        transcriber.engine = engine


def run_faster_whisper(engine, wav: Path, options: DecodeOptions) -> float:  # noqa: ANN001
    """faster-whisper on the file path itself, the service's decoding options."""
    start = time.perf_counter()
    segments, _info = engine._model.transcribe(str(wav), **engine._decode_kwargs(options))
    for _segment in segments:  # decoding happens as the generator is consumed
        pass
    return time.perf_counter() - start


if __name__ == "__main__":
    raise SystemExit(main())
