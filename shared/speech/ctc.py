"""CTC decoding over log-probabilities: greedy (the baseline) and pyctcdecode beam search.

Pure functions over a ``frames x vocab`` float32 matrix of log-probabilities, so they are testable
without a model. A wav2vec2 frame is 320 samples (20 ms at 16 kHz); word times are seconds
relative to the chunk. All returned text is Unicode NFC so identical words compare equal
whatever form the vocabulary uses.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from shared.errors import ErrorCode, SttError
from shared.speech.engines.base import DecodeOptions, Float32Array, Word

if TYPE_CHECKING:
    from pyctcdecode.decoder import BeamSearchDecoderCTC
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

FRAME_S = 320 / 16_000
_HIDDEN_LABEL_BASE = 0xF0000  # Unicode private use plane: labels that can never be emitted
_ARPA_SKIP = frozenset({"<s>", "</s>", "<unk>"})


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


@dataclass(frozen=True)
class CtcVocab:
    """What each logit column means: its token string, and which columns are not characters."""

    tokens: tuple[str, ...]
    blank_id: int
    delimiter_id: int | None = None
    special_ids: frozenset[int] = field(default_factory=frozenset)
    # Subword (BPE) vocabularies mark a word's first token with this prefix instead of having a
    # delimiter column; pyctcdecode recognises the same convention.
    word_prefix: str | None = None

    @classmethod
    def from_tokenizer(cls, tokenizer: PreTrainedTokenizerBase, size: int) -> CtcVocab:
        """Columns ``0..size-1`` of a model head, named as ``Wav2Vec2CTCTokenizer`` names them."""
        tokens = tuple(tokenizer.convert_ids_to_tokens(list(range(size))))
        blank = tokenizer.pad_token_id
        if blank is None:
            raise ValueError("the tokenizer has no pad token to use as the CTC blank")
        delimiter = getattr(tokenizer, "word_delimiter_token_id", None)
        vocab_ids = set(tokenizer.get_vocab().values())
        special = {i for i in tokenizer.all_special_ids if i < size}
        special |= {i for i in range(size) if i not in vocab_ids}
        return cls(tokens, blank, delimiter, frozenset(special - {blank, delimiter}))

    @cached_property
    def char_ids(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens) if i not in self.special_ids}

    @cached_property
    def lowercase(self) -> bool:
        return all(t == t.lower() for t in self.char_ids)

    def piece(self, token_id: int) -> str:
        """A token's text inside a word (a subword's word-start mark removed)."""
        token = self.tokens[token_id]
        if self.word_prefix and token.startswith(self.word_prefix):
            return token[len(self.word_prefix) :]
        return token

    def starts_word(self, token_id: int) -> bool:
        prefix = self.word_prefix
        return bool(prefix and self.tokens[token_id].startswith(prefix))

    def to_vocab_form(self, text: str) -> str:
        """Spell user text (hotwords) with the model's tokens, so pyctcdecode can match it.

        Vocabularies differ: some have every toned vowel precomposed (NFC), others spell the
        tone, or every diacritic, as a separate combining token. Each character is written with
        as few separate marks as the vocabulary allows.
        """
        text = nfc(text.strip())
        if self.word_prefix is not None:  # subwords: pyctcdecode matches hotwords as words
            return text.lower() if self.lowercase else text
        return "".join(self._spell(c) for c in (text.lower() if self.lowercase else text))

    def _spell(self, char: str) -> str:
        if char in self.char_ids:
            return char
        base, *marks = list(unicodedata.normalize("NFD", char))
        for count in range(1, len(marks) + 1):
            for apart in combinations(range(len(marks)), count):
                head = nfc(base + "".join(m for i, m in enumerate(marks) if i not in apart))
                tail = [marks[i] for i in apart]
                if head in self.char_ids and all(m in self.char_ids for m in tail):
                    return head + "".join(tail)
        return char


@dataclass(frozen=True, slots=True)
class CtcDecoding:
    text: str
    words: list[Word]


def _confidence(probs: Float32Array, start: int, end: int, ids: set[int]) -> float | None:
    """Mean over the word's frames of the best probability among its own tokens and blank.

    For greedy output every frame's argmax inside a word is one of those tokens, so this is the
    mean per-frame max probability; for a beam word the LM pushed against the acoustics it is
    lower, because frames where another character won count with the word's own (lower) odds.
    """
    if end <= start or not ids:
        return None
    return round(float(probs[start:end, sorted(ids)].max(axis=1).mean()), 4)


def _word(text: str, start: int, end: int, frame_s: float, conf: float | None) -> Word:
    return Word(nfc(text), round(start * frame_s, 3), round(end * frame_s, 3), conf)


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
            conf = _confidence(probs, start, end, {r[0] for r in runs} | {vocab.blank_id})
            words.append(_word("".join(vocab.piece(r[0]) for r in runs), start, end, frame_s, conf))
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
        words.append(_word(word, start, end, frame_s, _confidence(probs, start, end, ids)))
    return CtcDecoding(nfc(text), words)


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
