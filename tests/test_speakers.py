"""Speaker turns without a worker: words to turns, utterances, labels, the channel checks
(fake stereo, leakage), clustering, and how transcripts show speakers in each format."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from shared.speech.channel_wav import prepare_stereo
from shared.speech.channels import FRAME, ChannelStats, mono_reason, own_speech
from shared.speech.engines.base import SAMPLE_RATE, Segment, Word
from shared.speech.formats import render, segments_from_json, to_dict
from shared.speech.speakers.assign import Turn, assign
from shared.speech.speakers.clustering import cluster
from shared.speech.speakers.diarizer import to_turns
from shared.speech.speakers.summary import label_channels
from shared.speech.speakers.utterances import runs, spoken_segments
from tests.conversations import Conversation, conversation


def words(*spec: tuple[str, float, float]) -> list[Word]:
    return [Word(t, s, e) for t, s, e in spec]


def test_each_word_takes_the_turn_overlapping_it_most_and_labels_follow_first_speech():
    turns = [Turn(0.0, 2.0, 7), Turn(2.0, 4.0, 3), Turn(5.0, 6.0, 7)]
    got = assign(words(("a", 0.1, 0.5), ("b", 1.8, 2.6), ("c", 4.3, 4.5), ("d", 5.2, 5.5)), turns)
    # "b" lies mostly in the second turn; "c" is in no turn and takes the nearest one
    assert [w.speaker for w in got] == ["A", "B", "B", "A"]


def test_an_answer_inside_a_sentence_is_its_own_utterance():
    w = words(("tôi", 0, 0.3), ("muốn", 0.35, 0.6), ("vâng", 0.7, 0.9), ("hỏi", 1.0, 1.3))
    labelled = [replace(x, speaker=s) for x, s in zip(w, "AABA", strict=True)]
    assert [[x.text for x in r] for r in runs(labelled)] == [["tôi", "muốn"], ["vâng"], ["hỏi"]]


def test_a_backchannel_over_a_continuous_turn_does_not_chop_it():
    agent = [
        Word(t, i * 0.4, i * 0.4 + 0.38, speaker="A", channel=0)
        for i, t in enumerate("xin chào anh em có thể giúp gì".split())
    ]
    customer = [Word("vâng", 1.0, 1.3, speaker="B", channel=1)]
    got = runs(agent + customer)
    assert [len(r) for r in got] == [8, 1]
    assert got[0][0].channel == 0 and got[1][0].text == "vâng"


def test_a_long_pause_or_an_answer_in_the_gap_splits_a_channel_turn():
    a = [
        Word("một", 0, 0.4, speaker="A", channel=0),
        Word("hai", 4.0, 4.4, speaker="A", channel=0),
        Word("ba", 5.5, 5.9, speaker="A", channel=0),
    ]
    b = [Word("dạ", 4.6, 5.0, speaker="B", channel=1)]
    got = [[w.text for w in r] for r in runs(a + b)]
    assert got == [["một"], ["hai"], ["dạ"], ["ba"]]


def test_channel_labels_are_names_or_letters_in_order_of_first_speech():
    ch0, ch1 = words(("a", 3, 4)), words(("b", 1, 2))
    assert [w.speaker for w in label_channels([ch0, ch1], ())] == ["B", "A"]
    named = label_channels([ch0, ch1], ("agent", "customer"))
    assert [(w.speaker, w.channel) for w in named] == [("agent", 0), ("customer", 1)]


def test_overlapping_windows_of_two_speakers_meet_halfway():
    turns = to_turns([(0, 1.5), (0.6, 2.1), (1.2, 2.7)], [0, 0, 1])
    assert turns == [Turn(0, 1.65, 0), Turn(1.65, 2.7, 1)]


def _voices(n_per: int, centres: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(centres, 192))
    return np.concatenate([b + 0.3 * rng.normal(size=(n_per, 192)) for b in base]).astype(
        np.float32
    )


def test_clustering_finds_the_voices_or_the_number_asked():
    two = cluster(_voices(30, 2), 1, 20)
    assert len(set(two.tolist())) == 2 and len(set(two[:30].tolist())) == 1
    assert len(set(cluster(_voices(20, 3), 3, 3).tolist())) == 3
    assert set(cluster(_voices(3, 2), 1, 20).tolist()) == {0}  # too few windows: one speaker


def test_speakers_are_numbered_in_order_of_first_window_past_the_sampling_cap():
    """Over MAX_WINDOWS a sample is clustered and every window joins its nearest centre."""
    voices = _voices(1100, 3, seed=4)  # 3,300 windows: voices 0, 1, 2 in blocks
    shuffled = np.random.default_rng(1).permutation(len(voices))
    labels = cluster(voices[shuffled], 1, 20)
    first_seen = list(dict.fromkeys(labels.tolist()))
    assert first_seen == [0, 1, 2]
    truth = shuffled // 1100
    assert len(set(zip(labels.tolist(), truth.tolist(), strict=True))) == 3  # the same grouping


def _stats(block: np.ndarray) -> ChannelStats:
    stats = ChannelStats()
    stats.add(block.astype(np.float32))
    return stats


def test_fake_stereo_is_recognised():
    mono = conversation("VF", 4).mono
    assert "same audio" in (mono_reason(_stats(np.stack([mono, mono * 0.7], 1))) or "")
    assert "silent" in (mono_reason(_stats(np.stack([mono, 0 * mono], 1))) or "")
    assert mono_reason(_stats(conversation("VF", 4).call(-25))) is None


@pytest.mark.parametrize("leak_db", [-20.0, -35.0])
def test_leakage_is_silenced_and_own_speech_kept(leak_db):
    conv = conversation("VF", 8, seed=2)
    keep = own_speech(_stats(conv.call(leak_db)).levels())
    for channel, voice in enumerate(sorted(conv.tracks)):
        own = _frame_db(conv.tracks[voice])
        other = _frame_db(sum(t for v, t in conv.tracks.items() if v != voice))
        speaking = own > own.max() - 30  # the voice itself, not the pauses inside its turns
        listening = (other > other.max() - 30) & ~_near(speaking, 8)
        assert keep[: len(speaking)][speaking, channel].mean() > 0.97
        assert keep[: len(listening)][listening, channel].mean() < 0.01


def _frame_db(track: np.ndarray) -> np.ndarray:
    frames = len(track) // FRAME
    power = (track[: frames * FRAME].reshape(frames, FRAME) ** 2).mean(1)
    return 10 * np.log10(power + 1e-12)


def _near(mask: np.ndarray, frames: int) -> np.ndarray:
    return np.convolve(mask.astype(float), np.ones(2 * frames + 1), mode="same") > 0


def test_a_call_becomes_a_mix_and_two_channel_wavs(tmp_path):
    src = tmp_path / "call.wav"
    sf.write(src, conversation("VF", 4).call(-25), SAMPLE_RATE)
    stereo = prepare_stereo(src, tmp_path / "processed.wav", 600)
    assert stereo.note is None and [p.name for p in stereo.channels] == [
        "processed.ch1.wav",
        "processed.ch2.wav",
    ]
    assert sf.info(str(stereo.mix.path)).channels == 1
    stereo.remove_channels()
    same = tmp_path / "same.wav"
    mono = conversation("VF", 4).mono
    sf.write(same, np.stack([mono, mono], 1), SAMPLE_RATE)
    taken = prepare_stereo(same, tmp_path / "p2.wav", 600)
    assert not taken.channels and "same audio" in (taken.note or "")


def _speaker_segments() -> list[Segment]:
    a = [Word("xin", 0.0, 0.3, 0.9, "agent", 0), Word("chào", 0.3, 0.6, 0.8, "agent", 0)]
    b = [Word("dạ", 1.0, 1.2, 0.9, "customer", 1)]
    return [*spoken_segments(a), *spoken_segments(b)]


def test_formats_show_who_speaks():
    segments = _speaker_segments()
    txt, _ = render("txt", segments, "xin chào dạ", 2.0)
    assert txt == "agent: xin chào\ncustomer: dạ\n"
    vtt, _ = render("vtt", segments, "", 2.0)
    assert "<v agent>xin chào" in vtt and "<v customer>dạ" in vtt
    srt, _ = render("srt", segments, "", 2.0)
    assert "agent: xin chào" in srt
    doc = to_dict(segments, "xin chào dạ", 2.0)
    assert [(u["speaker"], u["channel"], u["text"]) for u in doc["utterances"]] == [
        ("agent", 0, "xin chào"),
        ("customer", 1, "dạ"),
    ]
    assert doc["segments"][0]["words"][0]["speaker"] == "agent"


def test_stored_rows_read_back_old_and_new():
    old = [
        {
            "text": "xin chào",
            "start": 0.0,
            "end": 1.0,
            "words": [{"text": "xin", "start": 0.0, "end": 0.5, "confidence": 0.9}],
        }
    ]
    back = segments_from_json(old)
    assert back[0].speaker is None and back[0].words[0].speaker is None
    assert render("txt", back, "xin chào", 1.0)[0] == "xin chào\n"
    new = json.loads(json.dumps([s.__class__.__name__ and _asdict(s) for s in _speaker_segments()]))
    assert segments_from_json(new) == _speaker_segments()


def _asdict(s: Segment) -> dict:
    from dataclasses import asdict

    return asdict(s)


def test_diarization_of_a_vietnamese_conversation_scores_well(speaker_cache):
    from pyannote.core import Annotation
    from pyannote.core import Segment as Span
    from pyannote.metrics.diarization import DiarizationErrorRate

    from shared.speech.speakers.diarizer import Diarizer
    from shared.speech.speakers.weights import ensure_campplus
    from shared.speech.vad import default_detector

    diarizer = Diarizer.load(ensure_campplus(speaker_cache), default_detector())
    conv = conversation("VF", 14, seed=0)
    found = diarizer.diarize(conv.mono, 1, 20)
    ref, hyp = Annotation(), Annotation()
    for s, e, v in conv.turns:
        ref[Span(s, e)] = v
    for t in found.turns:
        hyp[Span(t.start, t.end)] = t.speaker
    assert found.speakers == 2
    assert DiarizationErrorRate(collar=0.5, skip_overlap=False)(ref, hyp) < 0.12


class _OneSentence:
    """Stands in for the punctuation model (not part of this checkout): whatever it is given
    becomes one capitalised sentence, so a sentence across two speakers would show."""

    name = "one sentence"

    def format(self, words, options):  # noqa: ANN001, ANN201
        from shared.text.formatter import WrittenToken

        last = len(words) - 1
        return [
            WrittenToken((w.capitalize() if i == 0 else w) + ("." if i == last else ""), i, i)
            for i, w in enumerate(words)
        ]


def test_written_sentences_never_run_across_speakers():
    from types import SimpleNamespace

    from shared.speech.pipeline import Transcriber
    from shared.speech.written import LoadedFormatter
    from shared.text.formatter import FormatOptions

    engine = SimpleNamespace(info=None)
    transcriber = Transcriber(engine, None, 30.0, 1, LoadedFormatter(_OneSentence(), "stub"))
    said = [("A", "tôi muốn hỏi"), ("B", "vâng"), ("A", "về hóa đơn")]
    words, t = [], 0.0
    for speaker, text in said:
        for w in text.split():
            words.append(Word(w, t, t + 0.3, speaker=speaker))
            t += 0.35
    spoken, written = transcriber._by_utterance(words, FormatOptions())
    assert [(s.speaker, s.text) for s in written or []] == [
        ("A", "Tôi muốn hỏi."),
        ("B", "Vâng."),
        ("A", "Về hóa đơn."),
    ]
    assert [s.speaker for s in spoken] == ["A", "B", "A"]
    assert [w for s in written or [] for w in s.words] == words


def test_both_parties_talking_at_once_are_both_kept():
    conv = conversation("VF", 2, seed=4)
    (s0, e0, v0), (s1, _e1, v1) = conv.turns
    shift = int((s1 - (s0 + e0) / 2) * SAMPLE_RATE)  # the second starts halfway through the first
    tracks = {v0: conv.tracks[v0], v1: np.roll(conv.tracks[v1], -shift)}
    keep = own_speech(_stats(Conversation(tracks, []).call(-25)).levels())
    loud = {v: _frame_db(t) > _frame_db(t).max() - 30 for v, t in tracks.items()}
    both = loud[v0] & loud[v1]
    assert both.sum() > 20 and keep[: len(both)][both].all(axis=1).mean() > 0.9


def test_telephone_band_is_told_from_wideband_speech(tmp_path):
    """A real 8 kHz call and the same conversation sent down a phone line are band-limited;
    wideband clips, even muffled ones, are not (their features stay as they were)."""
    from scipy.signal import resample_poly

    from shared.speech.audio import iter_decoded
    from shared.speech.samples import ArraySamples
    from shared.speech.speakers.fbank import fbank, is_telephone_band
    from tests.conversations import SHARED

    call = SHARED / "vi-unlabelled" / "test1.wav"
    assert is_telephone_band(ArraySamples(np.concatenate(list(iter_decoded(call, 600.0)))))
    wide = conversation("VF", 6, seed=3).mono
    assert not is_telephone_band(ArraySamples(wide))
    sf.write(tmp_path / "tel.wav", resample_poly(wide, 1, 2).astype(np.float32), 8000)
    narrow = np.concatenate(list(iter_decoded(tmp_path / "tel.wav", 600.0)))
    assert is_telephone_band(ArraySamples(narrow))
    feats = fbank(narrow[:32000], telephone=True)
    assert not feats[:, -15:].any() and feats[:, :50].any()


def test_diarization_of_a_telephone_conversation_keeps_both_voices(speaker_cache, tmp_path):
    """Down the 8 kHz band two voices' windows look more alike; both must still be found."""
    from scipy.signal import resample_poly

    from shared.speech.audio import iter_decoded
    from shared.speech.speakers.diarizer import Diarizer
    from shared.speech.speakers.weights import ensure_campplus
    from shared.speech.vad import default_detector

    diarizer = Diarizer.load(ensure_campplus(speaker_cache), default_detector())
    conv = conversation("VF", 14, seed=0)
    sf.write(tmp_path / "tel.wav", resample_poly(conv.mono, 1, 2).astype(np.float32), 8000)
    narrow = np.concatenate(list(iter_decoded(tmp_path / "tel.wav", 600.0)))
    assert diarizer.diarize(narrow, 1, 20).speakers == 2


def test_a_recording_read_from_disk_gives_the_turns_of_one_held_whole(speaker_cache, tmp_path):
    """The worker diarizes the processed WAV where it lies (an archive of hours is never
    loaded whole): speech detection over blocks, windows read one batch at a time, the
    long-term spectrum from sampled frames. Every number must be the one of the whole array."""
    from shared.speech.processed_wav import load_wav
    from shared.speech.samples import ArraySamples, WavSamples
    from shared.speech.speakers.diarizer import Diarizer
    from shared.speech.speakers.weights import ensure_campplus
    from shared.speech.vad import default_detector

    wav = tmp_path / "conversation.wav"
    sf.write(wav, conversation("VFC", 40, seed=5).mono, SAMPLE_RATE, subtype="PCM_16")
    audio = load_wav(wav)
    with WavSamples(wav) as disk:
        assert len(disk) == audio.size
        assert np.array_equal(disk.read(-5, 1000), audio[:1000])  # clipped to the recording
        assert np.array_equal(disk.read(audio.size - 10, audio.size + 99), audio[-10:])
        assert np.array_equal(np.concatenate(list(disk.blocks(7777))), audio)
    detector = default_detector()
    whole = detector.speech_spans(audio)
    assert len(whole) > 5
    for size in (511, 7777, SAMPLE_RATE * 60):  # blocks cut anywhere, even mid-frame
        assert detector.stream_spans(ArraySamples(audio).blocks(size)) == whole
    diarizer = Diarizer.load(ensure_campplus(speaker_cache), detector)
    held = diarizer.diarize(audio, 1, 20)
    assert held.speakers == 3
    assert diarizer.diarize_wav(wav, 1, 20) == held


def test_a_short_windows_voice_print_does_not_depend_on_its_batch(speaker_cache):
    """CAM++ pools over every frame it is given: a 0.7 s window must be embedded on its own
    frames, not padded to the 1.5 s windows it happens to be batched with."""
    from shared.speech.samples import ArraySamples
    from shared.speech.speakers.diarizer import Diarizer
    from shared.speech.speakers.weights import ensure_campplus
    from shared.speech.vad import default_detector

    embedder = Diarizer.load(ensure_campplus(speaker_cache), default_detector()).embedder
    audio = ArraySamples(conversation("VF", 6, seed=1).mono)
    full = [(0.6 * i, 0.6 * i + 1.5) for i in range(5)]
    short = (4.0, 4.7)
    alone = embedder.embed(audio, [short])[0]
    batched = embedder.embed(audio, [*full[:3], short, *full[3:]])
    assert batched.shape == (6, 192)
    np.testing.assert_allclose(batched[3], alone, atol=1e-5)
    for i, window in enumerate(full):
        np.testing.assert_allclose(
            batched[i + (i >= 3)], embedder.embed(audio, [window])[0], atol=1e-5
        )
