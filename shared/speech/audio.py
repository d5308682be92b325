"""Audio decoding for the pipeline: any supported upload -> 16 kHz mono float32, streamed.

Everything goes through PyAV (it bundles the ffmpeg libraries, so no system binary is needed)
in one streaming code path: memory is bounded by the block size, not the file length, so 2-hour
recordings work. The format is recognised from the file's content, never its name, and the
demuxer is forced to the sniffed one, so a renamed playlist or concat script is never
interpreted. Duration is enforced by counting decoded samples, because headers can lie. The
processed WAV a job keeps is written from these blocks by ``shared.speech.processed_wav``.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator
from contextlib import closing
from pathlib import Path
from typing import cast

import av
import numpy as np

from shared.errors import ErrorCode, SttError
from shared.speech.engines.base import SAMPLE_RATE, Float32Array

SUPPORTED_FORMATS: frozenset[str] = frozenset({"wav", "flac", "ogg", "mp3", "m4a"})
SNIFF_BYTES = 64
MAX_FRAME_S = 30.0  # longest decoded frame accepted (see _check_frame_span)
# Our format name -> the ffmpeg demuxer forced for it (no probing of other demuxers).
_DEMUXERS = {"wav": "wav", "flac": "flac", "ogg": "ogg", "mp3": "mp3", "m4a": "mov"}
# Only local files: nested opens (playlists, references) cannot reach URLs or other protocols.
_OPEN_OPTIONS = {"protocol_whitelist": "file"}
log = logging.getLogger(__name__)


def sniff_format(head: bytes) -> str | None:
    """Name the container from its first bytes (read at least SNIFF_BYTES), else None."""
    if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if head[4:8] == b"ftyp":  # ISO base media: m4a, mp4, 3gp
        return "m4a"
    if head.startswith(b"ID3") or _is_mpeg_audio_frame(head):
        return "mp3"
    return None


def _is_mpeg_audio_frame(head: bytes) -> bool:
    """A Layer III frame header (MP3 without ID3); not I/II, so a UTF-16 BOM (FF FE) is no MP3."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    return version != 1 and layer == 1 and head[2] >> 4 != 15 and (head[2] >> 2) & 3 != 3


def detect_format(path: Path) -> str:
    """Sniff ``path``'s content; raise SttError if it is missing, empty or not supported."""
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except FileNotFoundError:
        raise SttError(ErrorCode.FILE_NOT_FOUND, f"audio file not found: {path}") from None
    except IsADirectoryError:
        raise SttError(ErrorCode.NOT_A_FILE, f"not a file: {path}") from None
    if not head:
        raise SttError(ErrorCode.EMPTY_AUDIO, "the audio file is empty (0 bytes)")
    fmt = sniff_format(head)
    if fmt is None:
        supported = ", ".join(sorted(SUPPORTED_FORMATS))
        raise SttError(
            ErrorCode.UNSUPPORTED_FORMAT, f"unrecognised audio content; supported: {supported}"
        )
    return fmt


def channel_count(path: Path) -> int:
    """Channels of the audio stream the decoder would pick, from the headers (0 if unknown).

    Only a hint for choosing the stereo path: the decode itself is what is trusted."""
    fmt = detect_format(path)
    try:
        with av.open(
            str(Path(path).resolve()),
            format=_DEMUXERS[fmt],
            container_options=_OPEN_OPTIONS,
            metadata_errors="replace",
        ) as container:
            best = cast("av.audio.stream.AudioStream | None", container.streams.best("audio"))
            return int(best.codec_context.channels) if best and best.codec_context else 0
    except (av.error.FFmpegError, ValueError, AttributeError, OSError):
        return 0  # the decode that follows reports what is wrong with the file


def iter_decoded(
    path: Path, max_duration_s: float, block_s: float = 30.0, layout: str = "mono"
) -> Iterator[Float32Array]:
    """Yield float32 16 kHz blocks of ``block_s`` seconds (the last one shorter): 1-D for
    ``layout="mono"``, (samples, 2) for ``"stereo"`` (a mono file then has two equal columns).

    Raises AUDIO_TOO_LONG as soon as the decoded sample count passes the limit, so a file
    whose header under-states its length is stopped early without being held in memory.
    """
    fmt = detect_format(path)
    max_samples, block = int(max_duration_s * SAMPLE_RATE), max(1, int(block_s * SAMPLE_RATE))
    pending: list[Float32Array] = []
    buffered = total = 0
    with closing(_decode_16k(Path(path), fmt, layout)) as decoded:  # closes the file on any exit
        for samples in decoded:
            total += len(samples)
            if total > max_samples:
                limit = f"{max_duration_s:g} s"
                raise SttError(ErrorCode.AUDIO_TOO_LONG, f"audio is longer than the {limit} limit")
            pending.append(samples)
            buffered += len(samples)
            if buffered >= block:
                joined = np.concatenate(pending)
                full = len(joined) // block * block
                yield from (joined[i : i + block] for i in range(0, full, block))
                pending, buffered = [joined[full:]], len(joined) - full
    if total == 0:
        raise SttError(ErrorCode.EMPTY_AUDIO, "the audio decodes to no samples")
    if buffered:
        yield np.concatenate(pending)


def _decode_16k(path: Path, fmt: str, layout: str) -> Generator[Float32Array, None, None]:
    """Decode and resample frame by frame; a mid-stream format change gets a fresh resampler."""
    try:
        container = av.open(
            str(path.resolve()),
            format=_DEMUXERS[fmt],
            container_options=_OPEN_OPTIONS,
            metadata_errors="replace",  # corrupt tags must not fail the decode
        )
    except av.error.FFmpegError as exc:
        raise _undecodable(fmt, exc) from exc
    with container, closing(_decode_frames(container, fmt)) as frames:
        resampler, setup = None, None
        for frame in frames:
            key = (frame.format.name, frame.layout.name, frame.sample_rate)
            if key != setup:
                yield from _resample(resampler, None, layout)
                resampler = av.AudioResampler(format="flt", layout=layout, rate=SAMPLE_RATE)
                setup = key
            _check_frame_span(frame, fmt)
            yield from _resample(resampler, frame, layout)
        yield from _resample(resampler, None, layout)


def _resample(
    resampler: av.AudioResampler | None, frame: av.AudioFrame | None, layout: str = "mono"
) -> Iterator[Float32Array]:
    """Resample one frame (None flushes); a passthrough resampler may hand back None.
    Packed stereo comes back interleaved, one row per sample after the reshape."""
    if resampler is None:
        return
    try:
        out = resampler.resample(frame)
    except (av.error.FFmpegError, ValueError) as exc:
        raise SttError(ErrorCode.UNDECODABLE_AUDIO, f"cannot resample the audio: {exc}") from exc
    for f in out:
        if f is not None and f.samples:  # corrupt float streams can hold NaN/inf: zero them
            samples = f.to_ndarray().reshape(-1 if layout == "mono" else (-1, 2))
            yield np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)


def _decode_frames(
    container: av.container.InputContainer, fmt: str
) -> Generator[av.AudioFrame, None, None]:
    """Decode the best audio stream, skipping bad packets and stopping at a read error.

    That mirrors ffmpeg: a stream that is corrupt part-way keeps what decoded. Only when
    nothing decoded at all is the file reported as undecodable.
    """
    # best() skips streams with unusable parameters; decoding one of those reports it properly
    # av types best() as returning a plain Stream, whatever kind is asked for
    best = cast("av.audio.stream.AudioStream | None", container.streams.best("audio"))
    stream = best or next(iter(container.streams.audio), None)
    if stream is None:
        raise SttError(ErrorCode.EMPTY_AUDIO, f"the {fmt} file contains no audio stream")
    if (ctx := stream.codec_context) is None:
        raise SttError(
            ErrorCode.DECODER_UNAVAILABLE,
            f"no decoder for the audio codec in this {fmt} file (unknown, or missing from this"
            " build): install ffmpeg/PyAV with a decoder for it",
        )
    packets, produced, error = container.demux(stream), 0, None
    while True:
        try:
            packet = next(packets, None)
        except av.error.FFmpegError as exc:  # unreadable container data: treat as the end
            packet, error = None, exc
        if packet is not None and packet.size == 0:
            continue  # demux's own flush packets; we flush once, below, at the real end
        try:
            frames = ctx.decode(packet)
        except av.error.FFmpegError as exc:  # one bad packet: skip it, as ffmpeg does
            frames, error = [], exc
        produced += sum(f.samples for f in frames)
        yield from frames
        if packet is None:
            break
    if produced == 0 and error is not None:
        raise _undecodable(fmt, error)
    if error is not None:
        log.warning("%s audio partly corrupt; kept %d decoded samples: %s", fmt, produced, error)


def _check_frame_span(frame: av.AudioFrame, fmt: str) -> None:
    """Refuse a frame longer than any real codec writes, before it is resampled: a "1 Hz" FLAC
    turns each 4096-sample frame into an hour of 16 kHz audio in one allocation, long before
    the sample count can stop it."""
    span_s = frame.samples / max(frame.sample_rate, 1)
    if span_s > MAX_FRAME_S:
        raise SttError(
            ErrorCode.UNDECODABLE_AUDIO,
            f"a {fmt} frame claims {span_s:.0f} s of audio at {frame.sample_rate} Hz: "
            "not a recording",
        )


def _undecodable(fmt: str, exc: Exception) -> SttError:
    reason = getattr(exc, "strerror", None) or str(exc)
    return SttError(ErrorCode.UNDECODABLE_AUDIO, f"cannot decode the {fmt} audio: {reason}")
