"""``stt transcribe FILE...``: the pipeline in this process, no database and no queue.

It takes the same speaker options as a job (checked by the same rules, so a bad one gets the
same stable code) and writes any of the transcript formats the API serves, to standard output
or, with ``--out``, one file per input beside the others.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.settings import Settings

if TYPE_CHECKING:  # the pipeline is imported when a file is transcribed, not for --help
    from shared.speech.pipeline import PipelineResult
    from shared.speech.speakers.options import SpeakerOptions

FORMATS = ("txt", "json", "srt", "vtt")


def add_transcribe_parser(sub: Any) -> None:
    parser = sub.add_parser("transcribe", help="transcribe files in-process, no queue")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument(
        "--spoken",
        action="store_true",
        help="the recogniser's own words: no numbers, punctuation or capitals",
    )
    parser.add_argument("--format", choices=FORMATS, default="txt", dest="fmt")
    parser.add_argument("--out", type=Path, help="write FILE's transcript to OUT/<name>.<format>")
    speakers = parser.add_argument_group("speakers (as a job's fields of the same names)")
    speakers.add_argument(
        "--no-multichannel",
        dest="multichannel",
        action="store_false",
        default=None,
        help="mix a two-channel call down to one",
    )
    speakers.add_argument("--channel-names", help="two names for the channels, e.g. agent,customer")
    speakers.add_argument(
        "--diarize",
        action="store_true",
        default=None,
        help="tell speakers apart on a single channel",
    )
    for count in ("num", "min", "max"):
        speakers.add_argument(f"--{count}-speakers", type=int)


def speaker_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options a job would store, checked by the API's own rules (SttError when bad)."""
    from api.speaker_fields import SPEAKER_FIELDS, SpeakerFields

    given = {name: getattr(args, name) for name in SPEAKER_FIELDS}
    return SpeakerFields.model_validate(given).model_dump(exclude_none=True)


def transcribe_files(settings: Settings, args: argparse.Namespace) -> int:
    """Exit status 0 when every file was transcribed, 1 when one failed, 2 for bad options.
    ``--spoken`` prints the recogniser's own words, as jobs with punctuate=false and
    format_text=false get them."""
    from shared.errors import SttError
    from shared.speech.speakers.options import SpeakerOptions

    try:
        speakers = SpeakerOptions.of(speaker_options(args))
    except SttError as exc:
        print(f"stt transcribe: error {exc.code.value}: {exc.message}", file=sys.stderr)
        return 2
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    return _run(settings, args, speakers)


def _run(settings: Settings, args: argparse.Namespace, speakers: SpeakerOptions) -> int:
    from shared.errors import SttError
    from shared.speech.engines.base import DecodeOptions
    from shared.speech.pipeline import build_transcriber, default_decoding
    from shared.text.formatter import FormatOptions

    transcriber = build_transcriber(settings)
    decoding = DecodeOptions(
        **default_decoding(transcriber.engine, settings.decoder, settings.beam_width)
    )
    formatting = FormatOptions(punctuate=not args.spoken, format_text=not args.spoken)
    status = 0
    written: set[Path] = set()  # two inputs named alike ("a/call.wav", "b/call.wav") keep both
    with tempfile.TemporaryDirectory() as tmp:
        for index, path in enumerate(args.files):
            try:
                result = transcriber.run(
                    path,
                    Path(tmp) / f"{index}.wav",
                    settings.max_duration_bulk_s,
                    decoding,
                    formatting=formatting,
                    speakers=speakers,
                )
            except SttError as exc:
                print(f"{path}: error {exc.code.value}: {exc.message}", file=sys.stderr)
                status = 1
                continue
            _emit(args, path, result, written)
    return status


def _emit(args: argparse.Namespace, path: Path, result: PipelineResult, written: set[Path]) -> None:
    """One transcript out: to its own file with --out; else to stdout, a file's plain text on
    one line after its name when there are several (the first version's shape), any other body
    after a ``==> name <==`` header, as ``head`` marks files."""
    from shared.speech.formats import has_speakers, render

    body, _ = render(
        args.fmt,
        result.segments,
        result.text,
        result.duration_s,
        spoken_text=result.spoken_text,
        speakers=result.speakers.to_json(),
    )
    if args.out:
        target = args.out / f"{path.stem}.{args.fmt}"
        if target in written:
            target = args.out / f"{path.stem}-{len(written)}.{args.fmt}"
        written.add(target)
        target.write_text(body, encoding="utf-8")
        print(target)
    elif len(args.files) == 1:
        sys.stdout.write(body)
    elif args.fmt == "txt" and not has_speakers(result.segments):
        print(f"{path}\t{body.strip()}")
    else:
        sys.stdout.write(f"==> {path} <==\n{body}")
