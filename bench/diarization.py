"""Who said what: DER of the speaker turns, leakage on two-channel calls, and what they cost.

    PYTHONPATH=. .venv/bin/python bench/diarization.py                       # DER tables
    PYTHONPATH=. .venv/bin/python bench/diarization.py --senko-path DIR      # + senko's own
    PYTHONPATH=. .venv/bin/python bench/diarization.py --calls --speed --conformer MODEL_DIR

DER is pyannote.metrics' DiarizationErrorRate(collar=0.5) (a ±0.25 s collar), overlap scored.
- AMI: the real meeting excerpts in ../shared/data/speakers/ with their RTTM and UEM; ours beside
  senko 0.2.2's own CPU pipeline (`--senko-path`: a folder where senko and its CPU dependencies
  were installed with `pip install --target`, kept out of the project's environment).
- Vietnamese: two- and three-speaker conversations built from the shared clips
  (tests/conversations.py; reference turns are the clips' speech extents), at 16 kHz and as
  8 kHz telephone audio (resampled down and decoded back by the service's decoder); the speaker
  count found by the eigen-gap, and given (num_speakers).
- Calls (`--calls`): two-channel calls with the other party leaking in at -20..-35 dB; the
  hypothesis turns are the speech the service transcribes on each channel (silero spans of the
  leak-masked channel WAVs, as detected and as the chunker pads them for the recogniser); a
  leakage of -200 dB is the baseline of a call with none; with `--conformer`, each call is
  transcribed and a word counts as duplicated when its time overlaps no turn of its own
  channel's speaker (±0.3 s).
- Words (`--words --conformer`): the two-speaker conversations through the whole pipeline with
  diarize=true; the share of recognised words given the right speaker.
- Speed (`--speed`): diarization alone on a 5-minute three-speaker conversation (model loaded
  before the clock starts), peak RSS; and with `--conformer`, a two-channel call against its own
  mono mix through Transcriber.run (the cost ratio the issue bounds at 2.1x).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from pyannote.core import Annotation
from pyannote.core import Segment as Span
from pyannote.metrics.diarization import DiarizationErrorRate
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.conformer_speed import cpu_line  # noqa: E402
from shared.speech.audio import iter_decoded  # noqa: E402
from shared.speech.channel_wav import prepare_stereo  # noqa: E402
from shared.speech.engines.base import SAMPLE_RATE, DecodeOptions, Word  # noqa: E402
from shared.speech.processed_wav import load_wav  # noqa: E402
from shared.speech.speakers.diarizer import Diarizer  # noqa: E402
from shared.speech.speakers.options import SpeakerOptions  # noqa: E402
from shared.speech.speakers.weights import ensure_campplus  # noqa: E402
from shared.speech.vad import default_detector  # noqa: E402
from tests.conversations import conversation  # noqa: E402

AMI = Path(__file__).resolve().parents[2] / "shared/data/speakers"
AMI_FILES = {"sample": "sample", "dev00": "debug.development", "dev01": "debug.development",
             "tst00": "debug.test", "tst01": "debug.test"}  # fmt: skip
Turns = list[tuple[float, float, str]]


def annotation(turns: Turns, uri: str) -> Annotation:
    out = Annotation(uri=uri)
    for start, end, speaker in turns:
        out[Span(start, end)] = speaker
    return out


def rttm(path: Path, uri: str) -> Turns:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [(float(r[3]), float(r[3]) + float(r[4]), r[7]) for r in rows if r[1] == uri]


def ours(diarizer: Diarizer, audio: np.ndarray, low: int = 1, high: int = 20) -> Turns:
    found = diarizer.diarize(audio, low, high)
    return [(t.start, t.end, str(t.speaker)) for t in found.turns]


def der_table(title: str, cases: dict[str, tuple[Turns, Turns]]) -> float:
    metric = DiarizationErrorRate(collar=0.5, skip_overlap=False)
    for uri, (ref, hyp) in cases.items():
        metric(annotation(ref, uri), annotation(hyp, uri))
    total = abs(metric)
    detail = metric.report(display=False)
    print(f"{title}: DER {100 * total:.1f} % over {len(cases)} files "
          f"(missed {detail['missed detection', '%'].iloc[-1]:.1f} %, false alarm "
          f"{detail['false alarm', '%'].iloc[-1]:.1f} %, confusion "
          f"{detail['confusion', '%'].iloc[-1]:.1f} %)")  # fmt: skip
    return total


def ami(diarizer: Diarizer, senko_path: str | None, tmp: Path) -> None:
    refs = {uri: rttm(AMI / f"{stem}.rttm", uri) for uri, stem in AMI_FILES.items()}
    audio = {uri: load_wav(AMI / f"{uri}.wav") for uri in AMI_FILES}
    der_table("AMI excerpts, ours", {u: (refs[u], ours(diarizer, audio[u])) for u in refs})
    if senko_path:
        sys.path.insert(0, senko_path)
        import senko  # type: ignore[import-not-found]

        model = senko.Diarizer(device="cpu", vad="silero", warmup=False, quiet=True)
        for uri in refs:  # senko reads 16-bit PCM WAV only
            sf.write(tmp / f"{uri}.wav", audio[uri], SAMPLE_RATE, subtype="PCM_16")
        found = {uri: model.diarize(str(tmp / f"{uri}.wav")) for uri in refs}
        for key in ("merged_segments", "raw_segments"):
            hyp = {
                uri: [(s["start"], s["end"], s["speaker"]) for s in found[uri][key] or []]
                for uri in refs
            }
            der_table(f"AMI excerpts, senko 0.2.2 ({key})", {u: (refs[u], hyp[u]) for u in refs})


def telephone(audio: np.ndarray, tmp: Path) -> np.ndarray:
    """Down to 8 kHz and back up through the service's own decoder, as a call would arrive."""
    path = tmp / "tel.wav"
    sf.write(path, resample_poly(audio, 1, 2).astype(np.float32), 8000)
    return np.concatenate(list(iter_decoded(path, 3600.0)))


def vietnamese(diarizer: Diarizer, tmp: Path) -> None:
    sets = {"two speakers": ["VF", "VC", "FC"] * 3, "three speakers": ["VFC"] * 4}
    for name, voices in sets.items():
        convs = [conversation(v, 14, seed=i) for i, v in enumerate(voices)]
        for band in ("16 kHz", "8 kHz"):
            audio = [c.mono if band == "16 kHz" else telephone(c.mono, tmp) for c in convs]
            for given in (False, True):
                cases = {}
                for i, (c, a) in enumerate(zip(convs, audio, strict=True)):
                    n = len(set(c.tracks))
                    hyp = ours(diarizer, a, n, n) if given else ours(diarizer, a)
                    cases[f"vi{i}"] = (c.turns, hyp)
                how = "num_speakers given" if given else "count found"
                der_table(f"Vietnamese {name}, {band}, {how}", cases)


def attributed_words(transcriber, tmp: Path) -> None:  # noqa: ANN001
    """Through the whole service path (Conformer, diarize=true): the share of recognised words
    whose speaker is right, each label mapped to the reference voice it most often lands on."""
    right = total = 0
    for i, voices in enumerate(["VF", "VC", "FC"] * 3):
        conv = conversation(voices, 14, seed=i)
        path = tmp / "conv.wav"
        sf.write(path, conv.mono, SAMPLE_RATE)
        options = SpeakerOptions(diarize=True)
        result = transcriber.run(
            path, tmp / "p.wav", 3600.0, DecodeOptions("beam", 8), speakers=options
        )
        pairs = []
        for w in (w for s in result.segments for w in s.words):
            overlap = {v: min(e, w.end) - max(s, w.start) for s, e, v in conv.turns}
            truth = max(overlap, key=lambda v: overlap[v])
            pairs.append((w.speaker, truth if overlap[truth] > -0.3 else None))
        mapping = {}
        for label in {p[0] for p in pairs}:
            seen = [t for lab, t in pairs if lab == label and t]
            mapping[label] = max(set(seen), key=seen.count) if seen else None
        right += sum(1 for lab, t in pairs if t and mapping[lab] == t)
        total += sum(1 for _, t in pairs if t)
    print(f"Vietnamese two speakers, 16 kHz, through the Conformer: {right}/{total} words "
          f"({100 * right / max(total, 1):.1f} %) given the right speaker")  # fmt: skip


def call_turns(stereo_path: Path, tmp: Path, pad_s: float) -> Turns:
    """Speech the service transcribes on each channel: silero spans of the masked WAVs, widened
    by ``pad_s`` as the chunker widens each chunk for the recogniser (0.2 s by default)."""
    stereo = prepare_stereo(stereo_path, tmp / "processed.wav", 3600.0)
    try:
        return [
            (max(0.0, s - pad_s), e + pad_s, str(c))
            for c, path in enumerate(stereo.channels)
            for s, e in default_detector().speech_spans(load_wav(path))
        ]
    finally:
        stereo.remove_channels()


def calls(tmp: Path, conformer: str | None) -> None:
    transcriber = _conformer(conformer) if conformer else None
    for leak in (-200.0, -20.0, -25.0, -30.0, -35.0):  # -200: no leakage at all, the baseline
        cases, padded, words, duplicated = {}, {}, 0, 0
        for seed in range(4):
            conv = conversation(("VF", "VC", "FC", "VF")[seed], 14, seed=10 + seed)
            path = tmp / f"call{seed}.wav"
            sf.write(path, conv.call(leak, seed=seed), SAMPLE_RATE)
            voices = sorted(conv.tracks)
            ref = [(s, e, str(voices.index(v))) for s, e, v in conv.turns]
            cases[f"call{seed}"] = (ref, call_turns(path, tmp, 0.0))
            padded[f"call{seed}"] = (ref, call_turns(path, tmp, 0.2))
            if transcriber is not None:
                result = transcriber.run(path, tmp / "p.wav", 3600.0, DecodeOptions("beam", 8))
                for w in (w for s in result.segments for w in s.words):
                    words += 1
                    duplicated += voices[w.channel or 0] not in _owners(w, conv.turns)
        der_table(f"two-channel calls, leakage {leak:g} dB, speech spans", cases)
        der_table(f"two-channel calls, leakage {leak:g} dB, spans as chunked (+0.2 s)", padded)
        if transcriber is not None:
            print(f"  words {words}, heard through the leak (duplicated) {duplicated}")


def _owners(word: Word, turns: Turns) -> set[str]:
    """Speakers whose turn (±0.3 s) the word overlaps: a word may span a pause of its own
    speaker (the recogniser can join syllables across it), so overlap, not the midpoint."""
    return {v for s, e, v in turns if word.start < e + 0.3 and word.end > s - 0.3}


def _conformer(model_dir: str):  # noqa: ANN202
    from shared.settings import load_settings
    from shared.speech.engines.conformer.engine import ConformerEngine
    from shared.speech.pipeline import build_transcriber

    settings = load_settings(engine="conformer", model=model_dir, formatting=False)
    return build_transcriber(settings, ConformerEngine(model_dir, "cpu"))


def speed(diarizer: Diarizer, tmp: Path, conformer: str | None) -> None:
    conv = conversation("VFC", 110, seed=99, reuse=True)
    audio = conv.mono
    length = len(audio) / SAMPLE_RATE
    cpu0, wall0 = time.process_time(), time.perf_counter()
    found = diarizer.diarize(audio, 1, 20)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"diarization of {length:.0f} s ({found.speakers} speakers found): wall {wall:.2f} s, "
          f"RTF {wall / length:.4f}, CPU {cpu:.2f} s; peak RSS {rss:.0f} MB")  # fmt: skip
    if conformer is None:
        return
    transcriber = _conformer(conformer)
    mono, call = tmp / "mono.wav", tmp / "call.wav"
    two = conversation("VF", 110, seed=98, reuse=True)  # a call has two parties
    sf.write(mono, two.mono, SAMPLE_RATE)
    sf.write(call, two.call(-25), SAMPLE_RATE)
    length = len(two.mono) / SAMPLE_RATE
    took = {}
    for name, path in (("mono", mono), ("call", call)) * 2:
        started = time.perf_counter()
        transcriber.run(
            path, tmp / "p.wav", 3600.0, DecodeOptions("beam", 8), speakers=SpeakerOptions()
        )
        took[name] = time.perf_counter() - started  # the second round counts (warm)
    print(
        f"two-channel call {took['call']:.1f} s vs its mono mix {took['mono']:.1f} s: "
        f"{took['call'] / took['mono']:.2f}x (on {length:.0f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--senko-path")
    parser.add_argument("--conformer", help="a Conformer model directory (calls, speed)")
    parser.add_argument("--calls", action="store_true")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--words", action="store_true", help="words' speakers (--conformer)")
    parser.add_argument("--skip-der", action="store_true")
    args = parser.parse_args()
    print(cpu_line())
    print(f"# load average at start: {os.getloadavg()}")
    diarizer = Diarizer.load(ensure_campplus(), default_detector())
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_der:
            ami(diarizer, args.senko_path, Path(tmp))
            vietnamese(diarizer, Path(tmp))
        if args.calls:
            calls(Path(tmp), args.conformer)
        if args.words and args.conformer:
            attributed_words(_conformer(args.conformer), Path(tmp))
        if args.speed:
            speed(diarizer, Path(tmp), args.conformer)
    print(f"# load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
