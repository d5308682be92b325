"""Training text as arrays: token ids, punctuation and case labels, and batches drawn from it.

The vocabulary and the mixed-case lexicon come from the training documents only. The runtime's
own ``model_key`` and ``case_class`` label the data, so training and serving agree on what a
token looks like to the model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from shared.text.punctuation import (
    LOWER,
    NUM,
    PUNCTS,
    TITLE,
    UNK,
    case_class,
    model_key,
)

from .prepare import Token

IGNORE = -100  # no case label: tokens with digits are returned as given
SPECIALS = ["<pad>", UNK, NUM]
UNK_ID = SPECIALS.index(UNK)


@dataclass
class Encoded:
    ids: np.ndarray  # int64 [n]
    punct: np.ndarray  # int64 [n]
    case: np.ndarray  # int64 [n]


def build_vocab(docs: Iterable[list[Token]], size: int, lexicon_min: int) -> tuple[list[str], dict]:
    """The most frequent keys (specials first) and the case lexicon: for each key whose most
    frequent capitalised form is neither Title nor what the model's class gives ("UBND", "iPhone",
    "TP.HCM"), that form, so the model only has to say whether a token is capitalised."""
    counts: Counter[str] = Counter()
    capital: Counter[tuple[str, str]] = Counter()
    for toks in docs:
        for form, _ in toks:
            key = model_key(form)
            counts[key] += 1
            if key != NUM and case_class(form) != LOWER:
                capital[key, form] += 1
    counts.pop(NUM, None)
    tokens = SPECIALS + [k for k, _ in counts.most_common(size - len(SPECIALS))]
    best: dict[str, str] = {}
    for (key, form), n in capital.most_common():
        if n >= lexicon_min and key not in best:
            best[key] = form
    lexicon = {k: f for k, f in best.items() if case_class(f) != TITLE}
    return tokens, lexicon


def encode(docs: Iterable[list[Token]], tokens: list[str]) -> Encoded:
    """One running stream of every document, as the recogniser's output would run on."""
    index = {t: i for i, t in enumerate(tokens)}
    mark = {p: i for i, p in enumerate(PUNCTS)}
    ids: list[int] = []
    punct: list[int] = []
    case: list[int] = []
    for toks in docs:
        for form, p in toks:
            key = model_key(form)
            ids.append(index.get(key, UNK_ID))
            punct.append(mark[p])
            case.append(case_class(form) if key != NUM else IGNORE)
    arr = [np.asarray(a, dtype=np.int64) for a in (ids, punct, case)]
    return Encoded(*arr)


def windows(
    data: Encoded, count: int, width: int, rare_share: float, rng: np.random.Generator
) -> np.ndarray:
    """[count, width] positions of running text; a share of the windows hold a token followed by
    '?' or '!', because questions are rare in the training text and common in speech."""
    rare = np.flatnonzero(data.punct >= PUNCTS.index("?"))
    n_rare = int(round(count * rare_share)) if len(rare) else 0
    starts = rng.integers(0, len(data.ids) - width, count - n_rare)
    around = rng.choice(rare, n_rare) - rng.integers(0, width, n_rare)
    starts = np.clip(np.concatenate([starts, around]), 0, len(data.ids) - width)
    return starts[:, None] + np.arange(width)[None, :]
