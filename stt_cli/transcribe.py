"""``stt transcribe FILE...``: the pipeline in this process, no database and no queue."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from shared.settings import Settings


def transcribe_files(settings: Settings, files: list[Path], spoken: bool = False) -> int:
    """``spoken`` prints the recogniser's own words, as jobs with punctuate=false and
    format_text=false get them."""
    from shared.errors import SttError
    from shared.speech.engines.base import DecodeOptions
    from shared.speech.pipeline import build_transcriber, default_decoding
    from shared.text.formatter import FormatOptions

    transcriber = build_transcriber(settings)
    defaults = default_decoding(transcriber.engine, settings.decoder, settings.beam_width)
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        for index, path in enumerate(files):
            try:
                result = transcriber.run(
                    path, Path(tmp) / f"{index}.wav", settings.max_duration_bulk_s,
                    DecodeOptions(**defaults),
                    formatting=FormatOptions(punctuate=not spoken, format_text=not spoken),
                )
            except SttError as exc:
                print(f"{path}: error {exc.code.value}: {exc.message}", file=sys.stderr)
                status = 1
                continue
            print(f"{path}\t{result.text}" if len(files) > 1 else result.text)
    return status
