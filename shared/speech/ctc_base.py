"""What CTC decoding works on and hands back: the vocabulary, the decoding, timed words.

A ``frames x vocab`` matrix of log-probabilities means nothing without its vocabulary: which
column is blank, which the word delimiter, which are special tokens, and how user text is
spelled in the model's tokens. Greedy decoding (``shared.speech.ctc``) and beam search
(``shared.speech.ctc_beam``) both build on this, and both time and score words the same way.
A wav2vec2 frame is 320 samples (20 ms at 16 kHz); word times are seconds relative to the chunk.
All returned text is Unicode NFC so identical words compare equal whatever form the vocabulary
uses.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from itertools import combinations
from typing import TYPE_CHECKING

from shared.speech.engines.base import Float32Array, Word

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

FRAME_S = 320 / 16_000


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


def word_confidence(probs: Float32Array, start: int, end: int, ids: set[int]) -> float | None:
    """Mean over the word's frames of the best probability among its own tokens and blank.

    For greedy output every frame's argmax inside a word is one of those tokens, so this is the
    mean per-frame max probability; for a beam word the LM pushed against the acoustics it is
    lower, because frames where another character won count with the word's own (lower) odds.
    """
    if end <= start or not ids:
        return None
    return round(float(probs[start:end, sorted(ids)].max(axis=1).mean()), 4)


def timed_word(text: str, start: int, end: int, frame_s: float, conf: float | None) -> Word:
    """The word of frames ``start..end``, timed in seconds from the chunk's start, text NFC."""
    return Word(nfc(text), round(start * frame_s, 3), round(end * frame_s, 3), conf)
