"""shared.speech.audio on real encoded files: formats by content, streaming limits, bad input."""

from __future__ import annotations

import base64
import struct
import tempfile
import tracemalloc
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import ErrorCode, SttError
from shared.speech import audio
from shared.speech.audio import SUPPORTED_FORMATS, detect_format, iter_decoded, sniff_format
from shared.speech.engines.base import SAMPLE_RATE
from shared.speech.processed_wav import (
    PreparedAudio,
    iter_wav_blocks,
    load_wav,
    peak_normalise,
    prepare_audio,
)
from tests.audio_factory import AUDIO_FORMATS, speechlike, tone, write_audio

CONTAINER = {"wav": "wav", "flac": "flac", "ogg": "ogg", "opus": "ogg", "mp3": "mp3", "m4a": "m4a"}
NATIVE_RATE = {"opus": 48000}  # libsndfile's Opus writer cannot take 44.1 kHz


def decode_all(path: Path, max_duration_s: float = 1000.0, block_s: float = 30.0) -> np.ndarray:
    return np.concatenate(list(iter_decoded(path, max_duration_s, block_s)))


def error_code(fn, *args) -> ErrorCode:
    with pytest.raises(SttError) as info:
        fn(*args)
    return info.value.code


def dominant_hz(x: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[spectrum.argmax()])


def wav_bytes(payload: bytes, data_size: int, riff_size: int, tag: int = 1) -> bytes:
    """A 16 kHz mono 16-bit WAV whose size fields say whatever the test wants."""
    fmt = struct.pack("<HHIIHH", tag, 1, SAMPLE_RATE, 2 * SAMPLE_RATE, 2, 16)
    return (
        b"RIFF" + struct.pack("<I", riff_size) + b"WAVE"
        + b"fmt " + struct.pack("<I", 16) + fmt
        + b"data" + struct.pack("<I", data_size) + payload
    )  # fmt: skip


@pytest.fixture(scope="module")
def six_minutes(tmp_path_factory) -> Path:
    return write_audio(tmp_path_factory.mktemp("long") / "six.wav", tone(360), SAMPLE_RATE, "wav")


@pytest.fixture(scope="module")
def short_mp3(tmp_path_factory) -> Path:
    return write_audio(tmp_path_factory.mktemp("mp3") / "s.mp3", tone(5), SAMPLE_RATE, "mp3")


# --- format detection by content ------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "wav"),
        (b"RF64\xff\xff\xff\xffWAVEds64", "wav"),
        (b"fLaC\x00\x00\x00\x22", "flac"),
        (b"OggS\x00\x02" + bytes(20), "ogg"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x23", "mp3"),
        (b"\xff\xfb\x90\x64" + bytes(10), "mp3"),  # bare MPEG-1 Layer III frame
        (b"\x00\x00\x00\x1cftypM4A \x00\x00\x02\x00", "m4a"),
        (b"\x00\x00\x00\x18ftyp3gp4", "m4a"),
        (b"RIFF\x24\x00\x00\x00AVI LIST", None),  # RIFF, but not WAVE
        (b"\xff\xf1\x50\x80" + bytes(10), None),  # ADTS AAC: layer bits 00
        (b"\xff\xfeh\x00e\x00l\x00", None),  # UTF-16 text byte-order mark
        (b"#EXTM3U\n#EXT-X-VERSION:3\n", None),
        (b"hello world", None),
        (b"", None),
    ],
)
def test_sniff_format(head: bytes, expected: str | None) -> None:
    assert sniff_format(head) == expected
    assert expected is None or expected in SUPPORTED_FORMATS


def test_supported_formats_are_the_products_list() -> None:
    assert SUPPORTED_FORMATS == {"wav", "flac", "ogg", "mp3", "m4a"}


def test_mp3_named_wav_is_decoded_as_mp3(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "really_an.wav", tone(2), SAMPLE_RATE, "mp3")
    assert detect_format(path) == "mp3"
    assert len(decode_all(path)) / SAMPLE_RATE == pytest.approx(2.0, rel=0.03)


@pytest.mark.parametrize(
    "content",
    [
        b"this is not audio at all\n" * 10,
        b"#EXTM3U\n#EXTINF:10,\nhttp://127.0.0.1/a.mp3\n",  # HLS playlist
        b"ffconcat version 1.0\nfile '/etc/passwd'\n",  # concat script
    ],
)
def test_non_audio_content_named_like_audio_is_unsupported(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(content)
    assert error_code(detect_format, path) == ErrorCode.UNSUPPORTED_FORMAT
    assert error_code(decode_all, path) == ErrorCode.UNSUPPORTED_FORMAT
    assert error_code(prepare_audio, path, tmp_path / "o.wav", 60) == ErrorCode.UNSUPPORTED_FORMAT


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    assert error_code(detect_format, empty) == ErrorCode.EMPTY_AUDIO
    assert error_code(decode_all, empty) == ErrorCode.EMPTY_AUDIO
    assert error_code(prepare_audio, empty, tmp_path / "o.wav", 60) == ErrorCode.EMPTY_AUDIO
    assert error_code(detect_format, tmp_path / "nope.mp3") == ErrorCode.FILE_NOT_FOUND
    assert error_code(detect_format, tmp_path) == ErrorCode.NOT_A_FILE


def test_local_file_whitelist_blocks_other_protocols(tmp_path: Path, short_mp3: Path) -> None:
    """The option we pass really stops a demuxer from opening a nested non-file URL."""
    url = "data:audio/mpeg;base64," + base64.b64encode(short_mp3.read_bytes()).decode()
    script = tmp_path / "list.ffconcat"
    script.write_text(f"ffconcat version 1.0\nfile '{url}'\n")
    with av.open(str(script), format="concat", container_options={"safe": "0"}) as c:
        assert c.streams.audio  # without the whitelist ffmpeg follows the URL
    with pytest.raises(av.error.FFmpegError):
        av.open(
            str(script), format="concat", container_options={**audio._OPEN_OPTIONS, "safe": "0"}
        )


# --- decoding every format --------------------------------------------------------------------


@pytest.mark.parametrize("fmt", AUDIO_FORMATS)
def test_each_format_decodes_to_16k_mono_float32(tmp_path: Path, fmt: str) -> None:
    path = write_audio(tmp_path / f"a.{fmt}", tone(5), SAMPLE_RATE, fmt)
    assert detect_format(path) == CONTAINER[fmt]
    blocks = list(iter_decoded(path, max_duration_s=60, block_s=2.0))
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    assert all(len(b) == 2 * SAMPLE_RATE for b in blocks[:-1])
    assert 0 < len(blocks[-1]) <= 2 * SAMPLE_RATE
    x = np.concatenate(blocks)
    assert len(x) / SAMPLE_RATE == pytest.approx(5.0, rel=0.03)
    assert dominant_hz(x) == pytest.approx(440, abs=3)


@pytest.mark.parametrize("fmt", AUDIO_FORMATS)
def test_stereo_44k_is_downmixed_and_resampled(tmp_path: Path, fmt: str) -> None:
    sr = NATIVE_RATE.get(fmt, 44100)
    path = write_audio(tmp_path / f"st.{fmt}", tone(4, sr, freq=1000, channels=2), sr, fmt)
    x = decode_all(path)
    assert x.dtype == np.float32 and x.ndim == 1
    assert len(x) / SAMPLE_RATE == pytest.approx(4.0, rel=0.03)
    assert 995 <= dominant_hz(x) <= 1015  # pitch survives (channels: 1000 Hz and 1010 Hz)


def test_unknown_codec_in_known_container_is_decoder_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "odd.wav"
    path.write_bytes(wav_bytes(bytes(32000), 32000, 32036, tag=0x9999))
    assert error_code(decode_all, path) == ErrorCode.DECODER_UNAVAILABLE


# --- corrupt input ----------------------------------------------------------------------------


def test_truncated_mp3_is_undecodable(tmp_path: Path, short_mp3: Path) -> None:
    data = short_mp3.read_bytes()
    id3_end = 10 + ((data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9])  # syncsafe
    path = tmp_path / "cut.mp3"
    path.write_bytes(data[: id3_end + 200])
    assert error_code(decode_all, path) == ErrorCode.UNDECODABLE_AUDIO
    assert error_code(prepare_audio, path, tmp_path / "o.wav", 60) == ErrorCode.UNDECODABLE_AUDIO


def test_partially_corrupt_mp3_keeps_what_decoded(tmp_path: Path, short_mp3: Path) -> None:
    data = bytearray(short_mp3.read_bytes())
    half = tmp_path / "half.mp3"
    half.write_bytes(data[: len(data) // 2])
    assert len(decode_all(half)) / SAMPLE_RATE == pytest.approx(2.5, abs=0.3)
    mid = len(data) // 2
    data[mid : mid + 300] = np.random.default_rng(0).integers(0, 256, 300, np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp3"
    damaged.write_bytes(bytes(data))
    assert len(decode_all(damaged)) / SAMPLE_RATE > 4.0


@pytest.mark.parametrize(
    "magic",
    [
        b"RIFF\x24\x00\x01\x00WAVE",
        b"fLaC",
        b"OggS",
        b"ID3",
        b"\xff\xfb\x90\x64",
        b"\x00\x00\x00\x18ftypM4A ",
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_garbage_after_valid_magic_is_a_stable_error(tmp_path: Path, magic: bytes, seed: int):
    path = tmp_path / "garbage.bin"
    path.write_bytes(
        magic + np.random.default_rng(seed).integers(0, 256, 20000, np.uint8).tobytes()
    )
    assert sniff_format(path.read_bytes()[:64]) is not None
    code = error_code(decode_all, path)
    assert code in {ErrorCode.UNDECODABLE_AUDIO, ErrorCode.EMPTY_AUDIO}
    assert error_code(prepare_audio, path, tmp_path / "o.wav", 60) == code


def test_wav_with_no_samples_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "nodata.wav"
    sf.write(path, np.zeros(0, np.float32), SAMPLE_RATE, subtype="PCM_16")
    assert error_code(decode_all, path) == ErrorCode.EMPTY_AUDIO


# --- silence and normalisation ----------------------------------------------------------------


def test_digital_silence_is_rejected_and_leaves_no_files(tmp_path: Path) -> None:
    src = write_audio(
        tmp_path / "in" / "quiet.flac", np.zeros(3 * SAMPLE_RATE), SAMPLE_RATE, "flac"
    )
    out_dir = tmp_path / "out"
    assert error_code(prepare_audio, src, out_dir / "o.wav", 60) == ErrorCode.SILENT_AUDIO
    assert list(out_dir.iterdir()) == []


def test_very_quiet_speech_is_not_silence(tmp_path: Path) -> None:
    src = write_audio(tmp_path / "soft.wav", 0.002 * speechlike(3), SAMPLE_RATE, "wav")
    prepared = prepare_audio(src, tmp_path / "o.wav", 60)
    assert prepared.peak == pytest.approx(0.0006, rel=0.1)
    assert np.abs(load_wav(prepared.path)).max() == pytest.approx(1.0, abs=1e-3)


def test_prepare_audio_writes_normalised_pcm16_and_cleans_up(tmp_path: Path) -> None:
    src = write_audio(tmp_path / "in.mp3", speechlike(6, 44100, seed=3)[:, None].repeat(2, 1),
                      44100, "mp3")  # fmt: skip
    dst = tmp_path / "nested" / "dir" / "out.wav"
    prepared = prepare_audio(src, dst, max_duration_s=60, block_s=1.0)

    assert isinstance(prepared, PreparedAudio)
    assert prepared.path == dst and prepared.format == "mp3"
    assert prepared.duration_s == pytest.approx(6.0, rel=0.03)
    assert prepared.samples == round(prepared.duration_s * SAMPLE_RATE)
    assert 0.2 < prepared.peak < 0.4
    info = sf.info(str(dst))
    assert (info.samplerate, info.channels, info.subtype, info.format) == (
        SAMPLE_RATE, 1, "PCM_16", "WAV",
    )  # fmt: skip
    assert info.frames == prepared.samples
    x = load_wav(dst)
    assert x.dtype == np.float32 and np.abs(x).max() == pytest.approx(1.0, abs=1e-3)
    assert sorted(p.name for p in dst.parent.iterdir()) == ["out.wav"]  # temp files gone

    blocks = list(iter_wav_blocks(dst, 16000))
    assert all(len(b) == 16000 and b.dtype == np.float32 for b in blocks[:-1])
    np.testing.assert_array_equal(np.concatenate(blocks), x)


def test_prepare_audio_replaces_an_existing_output(tmp_path: Path) -> None:
    dst = tmp_path / "o.wav"
    dst.write_bytes(b"stale")
    src = write_audio(tmp_path / "in.ogg", tone(2, amp=0.25), SAMPLE_RATE, "ogg")
    prepare_audio(src, dst, 60)
    assert sf.info(str(dst)).frames == pytest.approx(2 * SAMPLE_RATE, rel=0.03)


def test_peak_normalise() -> None:
    y = peak_normalise(np.array([0.1, -0.25, 0.05], np.float32))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [0.4, -1.0, 0.2], rtol=1e-6)
    assert error_code(peak_normalise, np.zeros(100, np.float32)) == ErrorCode.SILENT_AUDIO
    assert error_code(peak_normalise, np.full(10, 5e-5, np.float32)) == ErrorCode.SILENT_AUDIO
    assert error_code(peak_normalise, np.zeros(0, np.float32)) == ErrorCode.EMPTY_AUDIO


# --- duration limits and memory ---------------------------------------------------------------


def consume_until_error(path: Path, max_duration_s: float, block_s: float = 30.0):
    """Seconds yielded before iter_decoded raised, and the error."""
    seconds = 0.0
    with pytest.raises(SttError) as info:
        for block in iter_decoded(path, max_duration_s, block_s):
            seconds += len(block) / SAMPLE_RATE
    return seconds, info.value


def test_too_long_is_raised_while_decoding_not_after(six_minutes: Path, tmp_path: Path) -> None:
    seconds, err = consume_until_error(six_minutes, max_duration_s=300)
    assert err.code == ErrorCode.AUDIO_TOO_LONG
    assert 270 <= seconds <= 300  # stopped at the limit, the last 60 s never decoded
    assert error_code(prepare_audio, six_minutes, tmp_path / "o.wav", 300) == (
        ErrorCode.AUDIO_TOO_LONG
    )
    assert list(tmp_path.iterdir()) == []
    assert len(decode_all(six_minutes, max_duration_s=360)) == 360 * SAMPLE_RATE  # limit inclusive


def test_wav_header_claiming_no_data_still_hits_the_limit(tmp_path: Path) -> None:
    payload = (tone(360) * 32767).astype("<i2").tobytes()
    path = tmp_path / "lying.wav"
    path.write_bytes(wav_bytes(payload, data_size=0, riff_size=36))
    assert sf.info(str(path)).frames == 0  # what the header says
    seconds, err = consume_until_error(path, max_duration_s=300)
    assert err.code == ErrorCode.AUDIO_TOO_LONG and seconds <= 300


def test_wav_data_chunk_size_bounds_what_is_decoded(tmp_path: Path) -> None:
    """A small data size with a long tail: only the declared chunk is audio (as in ffmpeg)."""
    payload = (tone(360) * 32767).astype("<i2").tobytes()
    path = tmp_path / "tail.wav"
    path.write_bytes(wav_bytes(payload, data_size=2 * SAMPLE_RATE, riff_size=36 + 2 * SAMPLE_RATE))
    assert len(decode_all(path, max_duration_s=300)) == SAMPLE_RATE


def test_flac_streaminfo_claiming_one_second_still_hits_the_limit(
    six_minutes: Path, tmp_path: Path
) -> None:
    src = write_audio(tmp_path / "long.flac", load_wav(six_minutes), SAMPLE_RATE, "flac")
    data = bytearray(src.read_bytes())
    # STREAMINFO bytes 18..25: rate(20) channels(3) bits(5) total_samples(36), big-endian
    field = int.from_bytes(data[18:26], "big")
    field = (field >> 36 << 36) | SAMPLE_RATE  # claim one second
    data[18:26] = field.to_bytes(8, "big")
    path = tmp_path / "lying.flac"
    path.write_bytes(bytes(data))
    assert sf.info(str(path)).duration == pytest.approx(1.0)
    with av.open(str(path)) as c:
        assert c.duration / 1e6 == pytest.approx(1.0)  # ffmpeg believes it too
    seconds, err = consume_until_error(path, max_duration_s=300)
    assert err.code == ErrorCode.AUDIO_TOO_LONG and 270 <= seconds <= 300


def test_memory_is_bounded_by_block_not_file_length(six_minutes: Path) -> None:
    block_s = 5.0
    tracemalloc.start()
    try:
        total = sum(len(b) for b in iter_decoded(six_minutes, 1000, block_s))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 360 * SAMPLE_RATE
    block_bytes = int(block_s * SAMPLE_RATE) * 4
    assert peak < 8 * block_bytes  # ~2.5 MB, against 23 MB for the whole decoded file


# --- fuzzing ----------------------------------------------------------------------------------


FUZZ_FORMATS = ("wav", "mp3", "flac", "ogg", "m4a")


@pytest.fixture(scope="module")
def fuzz_sources(tmp_path_factory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("fuzz")
    return {
        fmt: write_audio(d / f"src.{fmt}", speechlike(1.5, seed=1), SAMPLE_RATE, fmt).read_bytes()
        for fmt in FUZZ_FORMATS
    }


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fmt=st.sampled_from(FUZZ_FORMATS),
    keep=st.floats(0.02, 1.0),  # fraction kept; >= 0.9 keeps the whole file
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 7)), max_size=20),
)
def test_mutated_files_succeed_or_raise_stt_error(fuzz_sources, fmt, keep, flips) -> None:
    """Truncated / bit-flipped real files: a result or an SttError, never another exception."""
    data = bytearray(fuzz_sources[fmt])
    data = data[: max(1, int(len(data) * keep))] if keep < 0.9 else data
    for where, bit in flips:  # flips land after the magic bytes, so the decoder is exercised
        data[min(16 + int(where * (len(data) - 16)), len(data) - 1)] ^= 1 << bit
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d) / "in.bin", Path(d) / "out"
        src.write_bytes(bytes(data))
        try:
            prepared = prepare_audio(src, out / "o.wav", max_duration_s=10)
        except SttError as exc:
            assert exc.code in {
                ErrorCode.UNSUPPORTED_FORMAT, ErrorCode.UNDECODABLE_AUDIO, ErrorCode.EMPTY_AUDIO,
                ErrorCode.SILENT_AUDIO, ErrorCode.AUDIO_TOO_LONG, ErrorCode.DECODER_UNAVAILABLE,
            }  # fmt: skip
            assert not out.exists() or list(out.iterdir()) == []
        else:
            assert prepared.samples > 0 and 0 < prepared.duration_s <= 10
            assert np.abs(load_wav(prepared.path)).max() == pytest.approx(1.0, abs=1e-3)
            assert [p.name for p in out.iterdir()] == ["o.wav"]  # no temp files left
