"""CTC decoding on hand-built log-probability matrices: greedy, beam, KenLM, hotwords, NFC."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from transformers import Wav2Vec2CTCTokenizer

from shared.errors import ErrorCode, SttError
from shared.speech.ctc import greedy_decode
from shared.speech.ctc_base import CtcVocab
from shared.speech.ctc_beam import beam_decode, get_decoder, pyctcdecode_labels, read_unigrams
from tests.tiny_models import VI_VOCAB

Frame = str | dict[str, float]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Wav2Vec2CTCTokenizer:
    vocab_file = tmp_path_factory.mktemp("vocab") / "vocab.json"
    vocab_file.write_text(json.dumps(VI_VOCAB, ensure_ascii=False), encoding="utf-8")
    return Wav2Vec2CTCTokenizer(str(vocab_file))


@pytest.fixture(scope="module")
def vocab(tokenizer: Wav2Vec2CTCTokenizer) -> CtcVocab:
    return CtcVocab.from_tokenizer(tokenizer, len(VI_VOCAB))


def matrix(frames: list[Frame], vocab_map: dict[str, int] = VI_VOCAB) -> np.ndarray:
    """Log-probs, one row per frame: a token name gets p=0.9, a dict gives explicit odds.

    ``_`` is the blank; whatever mass is left is spread evenly over the other tokens.
    """
    size = len(vocab_map)
    rows = np.zeros((len(frames), size), dtype=np.float64)
    for row, frame in zip(rows, frames, strict=True):
        odds = {frame: 0.9} if isinstance(frame, str) else frame
        named = {vocab_map["<pad>" if t == "_" else t]: p for t, p in odds.items()}
        rest = (1.0 - sum(named.values())) / (size - len(named))
        row[:] = rest
        for index, p in named.items():
            row[index] = p
    return np.log(rows).astype(np.float32)


def spell(text: str) -> list[Frame]:
    """Two frames per character then a blank, ``|`` between words: a clean, peaky alignment."""
    frames: list[Frame] = []
    for i, word in enumerate(text.split()):
        if i:
            frames += ["|", "_"]
        for char in word:
            frames += [char, char, "_"]
    return frames


def test_vocab_from_tokenizer(vocab: CtcVocab) -> None:
    assert vocab.blank_id == VI_VOCAB["<pad>"]
    assert vocab.delimiter_id == VI_VOCAB["|"]
    assert vocab.special_ids == {VI_VOCAB[t] for t in ("<s>", "</s>", "<unk>")}
    labels = pyctcdecode_labels(vocab)
    assert labels[VI_VOCAB["<pad>"]] == "" and labels[VI_VOCAB["|"]] == " "
    assert len(set(labels)) == len(labels)
    assert "<unk>" not in labels and labels[VI_VOCAB["ạ"]] == "ạ"


def test_greedy_text_equals_batch_decode(tokenizer: Wav2Vec2CTCTokenizer, vocab: CtcVocab) -> None:
    """Random id streams (specials, repeats, runs of blanks and delimiters) decode identically."""
    rng = np.random.default_rng(0)
    common = [0, 0, 0, 4, 4, 1, 2, 3, *range(5, len(VI_VOCAB))]
    for _ in range(200):
        ids = rng.choice(common, size=rng.integers(0, 40))
        ids = np.repeat(ids, rng.integers(1, 3, size=ids.size))
        log_probs = np.full((ids.size, len(VI_VOCAB)), -9.0, dtype=np.float32)
        log_probs[np.arange(ids.size), ids] = -0.01
        expected = tokenizer.batch_decode(ids[None, :])[0]
        assert greedy_decode(log_probs, vocab).text == unicodedata.normalize("NFC", expected)


def test_greedy_words_have_times_and_confidence(vocab: CtcVocab) -> None:
    frames = ["_", "x", "x", "i", "n", "n", "_", "|", "|", "_", "c", "h", "à", "_", "o", "_"]
    decoded = greedy_decode(matrix(frames), vocab)
    assert decoded.text == "xin chào"
    assert [(w.text, w.start, w.end) for w in decoded.words] == [
        ("xin", 0.02, 0.12),
        ("chào", 0.2, 0.3),
    ]
    assert all(w.confidence == pytest.approx(0.9, abs=1e-3) for w in decoded.words)


def test_greedy_handles_empty_and_all_blank(vocab: CtcVocab) -> None:
    assert greedy_decode(np.zeros((0, len(VI_VOCAB)), np.float32), vocab).text == ""
    decoded = greedy_decode(matrix(["_", "_", "|", "_"]), vocab)
    assert decoded.text == "" and decoded.words == []


def test_beam_without_lm_matches_greedy_on_peaky_input(vocab: CtcVocab) -> None:
    log_probs = matrix(spell("cám ơn các bạn rất nhiều"))
    greedy = greedy_decode(log_probs, vocab)
    beam = beam_decode(log_probs, vocab, beam_width=64)
    assert beam.text == greedy.text == "cám ơn các bạn rất nhiều"
    assert [(w.text, w.start, w.end) for w in beam.words] == [
        (w.text, w.start, w.end) for w in greedy.words
    ]
    assert all(0.0 <= (w.confidence or 0.0) <= 1.0 for w in beam.words)


def test_beam_never_emits_special_tokens(vocab: CtcVocab) -> None:
    frames: list[Frame] = [*spell("xin"), {"<unk>": 0.6, "_": 0.3}, "|", *spell("chào")]
    assert "<unk>" in greedy_decode(matrix(frames), vocab).text  # the baseline keeps it
    assert beam_decode(matrix(frames), vocab).text == "xin chào"


ARPA = """\\data\\
ngram 1=7
ngram 2=3

\\1-grams:
-1.0\t<s>\t-0.3
-1.0\t</s>
-2.0\t<unk>
-0.8\txin\t-0.3
-0.8\tchào\t-0.3
-1.2\tcác\t-0.3
-1.2\tbạn\t-0.3

\\2-grams:
-0.2\t<s> xin
-0.1\txin chào
-0.3\tcác bạn

\\end\\
"""


def ambiguous_chao() -> np.ndarray:
    """ "xin chà?" where the last vowel is slightly more "u" than "o" to the acoustic model."""
    return matrix([*spell("xin"), "|", "_", *spell("chà"), {"u": 0.5, "o": 0.45}, "_"])


def test_read_unigrams_from_arpa(tmp_path: Path) -> None:
    lm = tmp_path / "vi.arpa"
    lm.write_text(ARPA, encoding="utf-8")
    assert read_unigrams(lm) == ["xin", "chào", "các", "bạn"]


def test_kenlm_pulls_ambiguous_acoustics_to_a_known_word(vocab: CtcVocab, tmp_path: Path) -> None:
    lm = tmp_path / "vi.arpa"
    lm.write_text(ARPA, encoding="utf-8")
    assert greedy_decode(ambiguous_chao(), vocab).text == "xin chàu"
    assert beam_decode(ambiguous_chao(), vocab).text == "xin chàu"
    with_lm = beam_decode(ambiguous_chao(), vocab, lm_path=lm, alpha=0.5, beta=1.0)
    assert with_lm.text == "xin chào"
    assert [w.text for w in with_lm.words] == ["xin", "chào"]


def test_decoders_are_cached(vocab: CtcVocab, tmp_path: Path) -> None:
    lm = tmp_path / "vi.arpa"
    lm.write_text(ARPA, encoding="utf-8")
    labels = pyctcdecode_labels(vocab)
    assert get_decoder(labels, str(lm), 0.5, 1.0) is get_decoder(labels, str(lm), 0.5, 1.0)
    assert get_decoder(labels, None, 0.0, 0.0) is not get_decoder(labels, str(lm), 0.5, 1.0)


def test_unreadable_lm_is_a_model_load_error(vocab: CtcVocab, tmp_path: Path) -> None:
    lm = tmp_path / "broken.arpa"
    lm.write_text("\\data\\\nngram 1=oops\n", encoding="utf-8")
    with pytest.raises(SttError) as info:
        beam_decode(ambiguous_chao(), vocab, lm_path=lm)
    assert info.value.code == ErrorCode.MODEL_LOAD_FAILED
    assert "broken.arpa" in info.value.message


def test_hotwords_bias_ambiguous_acoustics(vocab: CtcVocab) -> None:
    frames = [*spell("các"), "|", "_", "b", "b", "_", {"ậ": 0.5, "ạ": 0.45}, "_", *spell("n")]
    assert beam_decode(matrix(frames), vocab).text == "các bận"
    # Given in upper case and decomposed (NFD): normalised to the vocabulary's spelling.
    hotword = unicodedata.normalize("NFD", "BẠN")
    biased = beam_decode(matrix(frames), vocab, hotwords=[hotword], hotword_weight=5.0)
    assert biased.text == "các bạn"


def test_output_is_nfc_for_a_decomposed_vocabulary() -> None:
    """A vocabulary spelling tones as combining marks still yields NFC text and matches hotwords."""
    tokens = ["<pad>", "|", "a", "n", "b", "ư", "â", "\u0300", "\u0323"]
    vocab = CtcVocab(tuple(tokens), blank_id=0, delimiter_id=1)
    ids = {t: i for i, t in enumerate(tokens)}
    frames: list[Frame] = ["b", "_", "a", "\u0323", "_", "n"]
    greedy = greedy_decode(matrix(frames, ids), vocab)
    assert greedy.text == "bạn" == unicodedata.normalize("NFC", greedy.text)
    assert len(greedy.text) == 3 and greedy.words[0].text == "bạn"
    beam = beam_decode(matrix(frames, ids), vocab, hotwords=["bạn"])
    assert beam.text == "bạn" and beam.words[0].text == "bạn"
    # Hotwords are re-spelt in the vocabulary's tokens: tone apart, other diacritics kept.
    assert vocab.to_vocab_form("Bạn") == "ba\u0323n"
    assert vocab.to_vocab_form("ự ậ ừ") == "ư\u0323 â\u0323 ư\u0300"
    assert CtcVocab(tuple(VI_VOCAB), 0, 4).to_vocab_form(" ẬU ") == "ậu"
