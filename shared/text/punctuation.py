"""Punctuation and capitals for a recogniser's lowercase run of syllables.

A small tagger (syllable embeddings, a convolution, two BiGRU layers, two heads) trained by
``training/punctuation`` and shipped in ``models/vi-punct``. It is loaded once and reused, like the
speech engines: an ONNX Runtime session and a vocabulary, nothing else (no torch at run time).
Long inputs are tagged in overlapping windows and each window's middle is kept, so memory stays
bounded and every token is seen with context on both sides. Tokens are never added, dropped or
reordered.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from .questions import NEVER_FIRST, mark_questions

SHIPPED = Path(__file__).parent / "models" / "vi-punct"
PUNCTS = ("", ",", ".", "?", "!")
LOWER, TITLE, UPPER, MIXED = range(4)
NUM, UNK = "<num>", "<unk>"
_SENTENCE_END = {".", "?", "!"}
Ids = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float32]
# The tagger reads windows of WINDOW tokens; each token is taken from the window where it has
# at least CONTEXT tokens on both sides (except at the stream's ends), BATCH windows per call,
# so a 30-minute monologue costs bounded memory and every decision sees both directions.
WINDOW, CONTEXT, BATCH = 128, 32, 32
_VOWELS = frozenset("aeiouy")  # after NFD: ă, â, ê, ô, ơ, ư and every tone fall back to these
ONE_WORD_END_MIN = 0.7  # see _no_weak_one_word_sentences
# Written in lower case inside a sentence whatever the case head says. The closing particles
# and a closing "đâu": the tagger capitalises one where it wrongly began a sentence, an end the
# question rules move past it. "tôi" and "chúng" (we): text capitalises them inside a sentence
# only where a quotation opens after a colon (folded into a comma in training), which speech
# does not have; on held-out news the case head's mid-sentence "Tôi" was wrong 43 times and
# right 26.
_LOWER_INSIDE = NEVER_FIRST | {"đâu", "tôi", "chúng"}
# Forms of address, lower case when called out ("dạ, anh ơi"): the tagger, taught by Wikipedia,
# reads "Anh" as England, which is never called with "ơi".
_CALLED = frozenset({"anh", "chị", "em", "ông", "bà", "cô", "chú", "bác", "bạn", "cháu", "con"})


class PunctuationModelError(RuntimeError):
    """The shipped model is missing or does not match its manifest."""


@dataclass(frozen=True, slots=True)
class Restored:
    text: str  # the token in its written case (tokens with digits unchanged)
    punct: str  # "", ",", ".", "?", "!"


def model_key(token: str) -> str:
    """What the tagger sees of a token; training uses the same function, so they cannot drift."""
    if any(c.isdigit() for c in token):
        return NUM
    return unicodedata.normalize("NFC", token).lower()


def case_class(form: str) -> int:
    """The case class of a written form (MIXED for anything the three rules do not give)."""
    if form == form.lower():
        return LOWER
    if form == form[:1].upper() + form[1:].lower():
        return TITLE
    return UPPER if form == form.upper() else MIXED


def apply_case(key: str, token: str, cls: int, lexicon: dict[str, str]) -> str:
    """The written form of a lowercase token for a predicted case class. A capitalised token
    the lexicon knows takes the lexicon's form ("UBND", "iPhone"); the model says only whether."""
    if cls == LOWER:
        return token
    if key in lexicon:
        return lexicon[key]
    return token.upper() if cls == UPPER or _unpronounceable(key) else token[:1].upper() + token[1:]


def _unpronounceable(key: str) -> bool:
    """A run of letters with no vowel ("hđqt", "vtv") is read letter by letter, an abbreviation,
    and Vietnamese writes those in capitals; the model would only title-case a capitalised one,
    and leaves one it never saw in lower case. Units ("km", "kg") are vowel-less too, but the
    training text has them all: in held-out news, 1,971 unseen vowel-less tokens are written in
    capitals and 4 in lower case."""
    bare = unicodedata.normalize("NFD", key)
    return key.isalpha() and not any(c in _VOWELS for c in bare)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _verified(directory: Path) -> dict[str, Any]:
    """The manifest, after checking each file it names against its sha256."""
    try:
        manifest: dict[str, Any] = json.loads((directory / "manifest.json").read_text())
        for name, digest in manifest["sha256"].items():
            if _sha256(directory / name) != digest:
                raise PunctuationModelError(f"{directory / name}: sha256 does not match manifest")
    except (OSError, ValueError, KeyError) as exc:
        raise PunctuationModelError(f"punctuation model in {directory} unusable: {exc}") from exc
    return manifest


class PunctuationModel:
    """Load once with :meth:`load`, then call :meth:`restore` from one thread at a time."""

    def __init__(self, session: ort.InferenceSession, vocab: dict[str, Any], name: str) -> None:
        self._session = session
        # Index 0 is padding, never an input token.
        self._ids = {tok: i for i, tok in enumerate(vocab["tokens"]) if i}
        self._lexicon: dict[str, str] = vocab["lexicon"]
        self._vocab = len(vocab["tokens"])
        # Per-class offsets added to the heads' logits, set on training text after training.
        self._punct_bias = np.asarray(vocab.get("punct_bias", [0.0] * len(PUNCTS)), np.float32)
        self._case_bias = np.asarray(vocab.get("case_bias", [0.0] * 4), np.float32)
        self.name = name

    @classmethod
    def load(cls, directory: Path | None = None, threads: int = 1) -> PunctuationModel:
        """The model in ``directory`` (default: the shipped one), its files checked first."""
        directory = directory or SHIPPED
        manifest = _verified(directory)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(
                str(directory / "model.onnx"), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise PunctuationModelError(f"{directory / 'model.onnx'}: {exc}") from exc
        vocab = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
        size = (directory / "model.onnx").stat().st_size / 1e6
        return cls(
            session, vocab, f"{manifest['name']} ({manifest['architecture']}, {size:.1f} MB)"
        )

    def restore(self, tokens: Sequence[str]) -> list[Restored]:
        """One result per token, in order: its written form and the mark after it."""
        if not tokens:
            return []
        keys = [model_key(t) for t in tokens]
        ids = self.ids(tokens)
        logits, case_logits = self.logits(ids)
        logits += self._punct_bias
        punct = _no_weak_one_word_sentences(logits, logits.argmax(-1))
        case = (case_logits + self._case_bias).argmax(-1)
        unknown = ids == self._ids[UNK]
        # The input's end ends a sentence; the model says which mark.
        punct[-1] = PUNCTS.index(".") + logits[-1, PUNCTS.index(".") :].argmax()
        marks = mark_questions(keys, [PUNCTS[p] for p in punct])
        lower = _lower_inside(keys)
        out: list[Restored] = []
        sentence_start = True
        for i, (token, key, mark, c) in enumerate(zip(tokens, keys, marks, case, strict=True)):
            cls = TITLE if sentence_start and c == LOWER else int(c)
            if unknown[i] and len(key) > 1 and _unpronounceable(key):
                cls = UPPER  # see _unpronounceable: an unseen one is still an abbreviation
            elif lower[i] and not sentence_start:
                cls = LOWER
            # Digits, or a recogniser that already wrote capitals: the token stays as given.
            keep = key == NUM or token != token.lower()
            text = token if keep else apply_case(key, token, cls, self._lexicon)
            out.append(Restored(text, mark))
            sentence_start = mark in _SENTENCE_END
        return out

    def ids(self, tokens: Sequence[str]) -> Ids:
        unk = self._ids[UNK]
        return np.array([self._ids.get(model_key(t), unk) for t in tokens], dtype=np.int64)

    def logits(self, ids: Ids) -> tuple[Floats, Floats]:
        """Punctuation and case logits per token, read from overlapping windows."""
        starts, keep = _windows(len(ids))
        punct: list[Floats] = []
        case: list[Floats] = []
        for first in range(0, len(starts), BATCH):
            group = starts[first : first + BATCH]
            width = min(WINDOW, len(ids))
            batch = np.stack([ids[s : s + width] for s in group])
            p, c = self._session.run(None, {"ids": batch})
            for row, (lo, hi) in enumerate(keep[first : first + BATCH]):
                start = group[row]
                punct.append(np.asarray(p[row, lo - start : hi - start], dtype=np.float32))
                case.append(np.asarray(c[row, lo - start : hi - start], dtype=np.float32))
        return np.concatenate(punct), np.concatenate(case)


def _lower_inside(keys: Sequence[str]) -> list[bool]:
    """Which tokens are written in lower case unless they start a sentence."""
    after = [*keys[1:], ""]
    pairs = zip(keys, after, strict=True)
    return [k in _LOWER_INSIDE or (k in _CALLED and a == "ơi") for k, a in pairs]


def _no_weak_one_word_sentences(logits: Floats, punct: Ids) -> Ids:
    """A sentence end right after a sentence's first word, kept only when the model gives the
    end marks together at least ``ONE_WORD_END_MIN``; else the likelier of no mark and comma.

    With little left context the tagger ends a sentence after a first word on weak evidence
    ("Cám. Ơn rất nhiều", "Sáng. Ngày 15/8"): taking the arg max over five marks, a period at
    0.43 beats no mark and comma that share the rest. On training text (150k tokens) fewer
    than 3 in 10 such one-word sentences are real; above 0.7 more than half are. Held-out
    news: 53 of 62 are dropped, 40 of them wrong. Real ones ("Vâng. Tôi hiểu.") that the
    model is sure of stay. The input's last word always ends a sentence, so a sentence of it
    alone is made by the end before it, held to the same bar.
    """
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    ends = probs[:, 2:].sum(-1) / probs.sum(-1)  # ".", "?", "!"
    out = punct.copy()
    after_end = True
    for i in range(len(out) - 1):  # the input's last token always ends a sentence
        if after_end and out[i] >= 2 and ends[i] < ONE_WORD_END_MIN:
            out[i] = int(logits[i, :2].argmax())
        after_end = out[i] >= 2
    # The last word alone ("gây trơn. Trợt."): there the end before it makes the sentence.
    if len(out) > 1 and out[-2] >= 2 and ends[-2] < ONE_WORD_END_MIN:
        out[-2] = int(logits[-2, :2].argmax())
    return out


def _windows(n: int) -> tuple[list[int], list[tuple[int, int]]]:
    """Window starts, and the [lo, hi) stretch of the stream each window answers for."""
    if n <= WINDOW:
        return [0], [(0, n)]
    step = WINDOW - 2 * CONTEXT
    starts = list(range(0, n - WINDOW, step)) + [n - WINDOW]
    keep, lo = [], 0
    for i, start in enumerate(starts):
        hi = n if i == len(starts) - 1 else start + WINDOW - CONTEXT
        keep.append((lo, hi))
        lo = hi
    return starts, keep
