"""CTC beam search with pyctcdecode: an optional KenLM language model and per-call hotwords.

The decoder is built once per labels, LM and weights (loading an LM takes seconds). Words come
back timed and scored like greedy ones (``shared.speech.ctc_base``), so a transcript's shape
does not depend on the decoder chosen.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from shared.errors import ErrorCode, SttError
from shared.speech.ctc_base import (
    FRAME_S,
    CtcDecoding,
    CtcVocab,
    nfc,
    timed_word,
    word_confidence,
)
from shared.speech.engines.base import Float32Array

if TYPE_CHECKING:
    from pyctcdecode.decoder import BeamSearchDecoderCTC

log = logging.getLogger(__name__)

_HIDDEN_LABEL_BASE = 0xF0000  # Unicode private use plane: labels that can never be emitted
_ARPA_SKIP = frozenset({"<s>", "</s>", "<unk>"})


def pyctcdecode_labels(vocab: CtcVocab) -> tuple[str, ...]:
    """Labels in pyctcdecode's convention: blank ``""``, delimiter ``" "``, characters as-is.

    Special tokens (``<s>``, ``</s>``, ``<unk>``, unnamed head columns) get unique private-use
    placeholders: pyctcdecode needs one distinct label per column, and :func:`beam_decode`
    moves their probability to blank so they never appear in a transcript.
    """
    labels = []
    for i, token in enumerate(vocab.tokens):
        if i == vocab.blank_id:
            labels.append("")
        elif i == vocab.delimiter_id:
            labels.append(" ")
        elif i in vocab.special_ids:
            labels.append(chr(_HIDDEN_LABEL_BASE + i))
        else:
            labels.append(token)
    return tuple(labels)


def read_unigrams(lm_path: Path) -> list[str] | None:
    """Words the LM knows, which pyctcdecode needs to score partial words.

    ARPA files list them (read here as UTF-8 whatever the locale, and also when unigram lines
    carry no backoff, unlike pyctcdecode's own reader); for a KenLM binary they come from a
    ``unigrams.txt`` beside it (the layout ``Wav2Vec2ProcessorWithLM`` saves), else ``None``.
    """
    with lm_path.open("rb") as handle:
        is_arpa = handle.read(64).lstrip().startswith(b"\\data\\")
    if not is_arpa:
        listed = lm_path.parent / "unigrams.txt"
        if listed.is_file():
            return listed.read_text(encoding="utf-8").split()
        log.warning("no unigrams.txt next to %s; beam search with this LM will be weaker", lm_path)
        return None
    words: list[str] = []
    in_unigrams = False
    with lm_path.open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line.startswith("\\"):
                if in_unigrams:
                    break
                in_unigrams = line == "\\1-grams:"
            elif in_unigrams and line:
                parts = line.split("\t")
                if len(parts) >= 2 and parts[1] not in _ARPA_SKIP:
                    words.append(parts[1])
    return words


@lru_cache(maxsize=4)
def get_decoder(
    labels: tuple[str, ...], lm_path: str | None, alpha: float, beta: float
) -> BeamSearchDecoderCTC:
    """Build (once per labels/LM/weights) a pyctcdecode decoder; loading an LM takes seconds."""
    from pyctcdecode.decoder import build_ctcdecoder

    if lm_path is None:
        return build_ctcdecoder(list(labels))
    try:
        import kenlm  # noqa: F401  (pyctcdecode needs it for any LM)

        path = Path(lm_path)
        return build_ctcdecoder(
            list(labels), str(path), unigrams=read_unigrams(path), alpha=alpha, beta=beta
        )
    except (ImportError, OSError, RuntimeError, ValueError) as exc:
        raise SttError(
            ErrorCode.MODEL_LOAD_FAILED,
            f"could not load the KenLM language model {lm_path!r} ({exc}); set STT_LM_PATH to "
            "an ARPA or KenLM binary file (kenlm installed: pip install '.[lm]') or unset it",
        ) from exc


def _word_token_ids(
    word: str, log_probs: Float32Array, start: int, end: int, vocab: CtcVocab
) -> set[int]:
    """Columns that count as the word's own: its characters, or for subwords its frames' best."""
    if vocab.word_prefix is not None:
        ids = {int(i) for i in log_probs[start:end].argmax(axis=1)}
    else:
        ids = {vocab.char_ids[c] for c in word if c in vocab.char_ids}
    return ids | {vocab.blank_id}


def beam_decode(
    log_probs: Float32Array,
    vocab: CtcVocab,
    *,
    beam_width: int = 32,
    hotwords: Sequence[str] = (),
    hotword_weight: float = 10.0,
    lm_path: Path | None = None,
    alpha: float = 0.5,
    beta: float = 1.0,
    frame_s: float = FRAME_S,
) -> CtcDecoding:
    """Beam search with an optional KenLM and per-call hotwords; words timed like greedy's."""
    if log_probs.shape[0] == 0:
        return CtcDecoding("", [])
    lm = str(lm_path) if lm_path is not None else None
    decoder = get_decoder(pyctcdecode_labels(vocab), lm, alpha if lm else 0.0, beta if lm else 0.0)
    scores = log_probs.astype(np.float32, copy=True)
    special = sorted(vocab.special_ids)
    if special:  # a special token is "no character here": count its probability as blank
        columns = [vocab.blank_id, *special]
        scores[:, vocab.blank_id] = np.logaddexp.reduce(log_probs[:, columns], axis=1)
        scores[:, special] = -np.inf
    wanted = [w for w in (vocab.to_vocab_form(h) for h in hotwords) if w]
    best = decoder.decode_beams(
        scores,  # type: ignore[arg-type]  # pyctcdecode's hint floating[NBitBase] fits no dtype
        beam_width=beam_width,
        hotwords=wanted or None,
        hotword_weight=hotword_weight,
    )[0]
    text, word_frames = best[0], best[2]
    probs = np.exp(log_probs)
    words = []
    for word, (start, end) in word_frames:
        ids = _word_token_ids(word, log_probs, start, end, vocab)
        conf = word_confidence(probs, start, end, ids)
        words.append(timed_word(word, start, end, frame_s, conf))
    return CtcDecoding(nfc(text), words)
