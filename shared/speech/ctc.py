"""CTC decoding over log-probabilities: greedy (the baseline), and the dispatch to beam search.

Pure functions over a ``frames x vocab`` float32 matrix of log-probabilities, so they are testable
without a model. The vocabulary and the result types are ``shared.speech.ctc_base``; beam search
with pyctcdecode is ``shared.speech.ctc_beam``; ``decode`` applies a job's choice between them.
"""

from __future__ import annotations

from pathlib import Path

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
from shared.speech.ctc_beam import beam_decode
from shared.speech.engines.base import DecodeOptions, Float32Array, Word


def greedy_decode(
    log_probs: Float32Array, vocab: CtcVocab, frame_s: float = FRAME_S
) -> CtcDecoding:
    """Argmax per frame, collapse repeats, drop blanks: the first version's decoding.

    The text is exactly what ``processor.batch_decode(argmax_ids)`` returns (special tokens such
    as ``<unk>`` kept verbatim, ``|`` -> space, outer whitespace stripped), then NFC.
    """
    ids = log_probs.argmax(axis=1)
    if ids.size == 0:
        return CtcDecoding("", [])
    probs = np.exp(log_probs)
    bounds = np.flatnonzero(np.diff(ids)) + 1
    pieces: list[str] = []
    words: list[Word] = []
    runs: list[tuple[int, int, int]] = []  # (token id, first frame, end frame) of the open word

    def close_word() -> None:
        if runs:
            start, end = runs[0][1], runs[-1][2]
            conf = word_confidence(probs, start, end, {r[0] for r in runs} | {vocab.blank_id})
            text = "".join(vocab.piece(r[0]) for r in runs)
            words.append(timed_word(text, start, end, frame_s, conf))
            runs.clear()

    for start, end in zip(np.r_[0, bounds], np.r_[bounds, ids.size], strict=True):
        token = int(ids[start])
        if token == vocab.blank_id:
            continue
        if token == vocab.delimiter_id:
            pieces.append(" ")
            close_word()
            continue
        if vocab.starts_word(token):
            pieces.append(" ")
            close_word()
        pieces.append(vocab.piece(token))
        runs.append((token, int(start), int(end)))
    close_word()
    return CtcDecoding(nfc("".join(pieces).strip()), words)


def decode(
    log_probs: Float32Array,
    vocab: CtcVocab,
    options: DecodeOptions,
    lm: tuple[Path | None, float, float] = (None, 0.5, 1.0),
    frame_s: float = FRAME_S,
) -> CtcDecoding:
    """A job's decoding choice applied to one chunk; ``lm`` is (path, alpha, beta)."""
    if options.decoder == "greedy":
        return greedy_decode(log_probs, vocab, frame_s)
    if options.decoder == "beam":
        lm_path, alpha, beta = lm
        return beam_decode(
            log_probs,
            vocab,
            beam_width=options.beam_width,
            hotwords=options.hotwords,
            hotword_weight=options.hotword_weight,
            lm_path=lm_path,
            alpha=alpha,
            beta=beta,
            frame_s=frame_s,
        )
    raise SttError(ErrorCode.INVALID_REQUEST, f"unknown decoder {options.decoder!r}")
