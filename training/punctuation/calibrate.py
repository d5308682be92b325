"""Per-class logit offsets for the shipped model, chosen on training text, never on a test set.

A model trained for a short time on imbalanced labels under-predicts the rare classes (commas,
periods, capitals): its precision runs well above its recall. An offset per class, added to the
logits before the argmax, trades one for the other; each is chosen for the best F1 of its class
on a slice of training documents (the model is far from fitting them, so their figures track
held-out ones). The offsets go into ``vocab.json``; the manifest is rewritten to match.

    python -m training.punctuation.calibrate --out shared/text/models/vi-punct
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from shared.text.punctuation import PUNCTS, PunctuationModel

from .evaluate import measure
from .export import write_manifest
from .prepare import Token, split

GRID = np.arange(-1.0, 4.01, 0.25)
CASE_GRID = np.arange(-0.5, 1.51, 0.25)
SLICE = (3000, 3600)  # training documents used, in the split's order


def _f1(ref: np.ndarray, pred: np.ndarray, k: int) -> float:
    tp = np.sum((ref == k) & (pred == k))
    return float(2 * tp / max(np.sum(ref == k) + np.sum(pred == k), 1))


def punct_bias(logits: np.ndarray, ref: np.ndarray) -> list[float]:
    """Coordinate ascent, two rounds over the four marks, each for its own F1."""
    bias = np.zeros(len(PUNCTS), dtype=np.float32)
    for _, k in itertools.product(range(2), range(1, len(PUNCTS))):
        scores = []
        for b in GRID:
            bias[k] = b
            scores.append(_f1(ref, (logits + bias).argmax(-1), k))
        bias[k] = GRID[int(np.argmax(scores))]
    return [float(b) for b in bias]


def case_bias(model: PunctuationModel, docs: list[list[Token]]) -> list[float]:
    """One offset for all capitalised classes against lower, for the capitalisation F1 of what
    the runtime writes (sentence starts, the lexicon, abbreviations), not of the bare head: the
    bare head's F1 favoured a larger offset that capitalises more pronouns after commas."""
    best, best_f1 = 0.0, -1.0
    for b in CASE_GRID:
        model._case_bias = np.array([0, b, b, b], dtype=np.float32)
        f1 = measure(model, docs).rows()["capitalisation"][2]
        if f1 > best_f1:
            best, best_f1 = float(b), f1
    return [0.0, best, best, best]


def calibrate(out: Path, data: Path, seed: int) -> dict[str, list[float]]:
    model = PunctuationModel.load(out)
    docs = [toks for _, toks in itertools.islice(split(data, seed)["train"], *SLICE)]
    stream: list[Token] = [tok for toks in docs for tok in toks]
    forms = [form for form, _ in stream]
    p_logits, c_logits = model.logits(model.ids([f.lower() for f in forms]))
    ref = np.array([PUNCTS.index(p) for _, p in stream])
    vocab_path = out / "vocab.json"
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    vocab["punct_bias"] = punct_bias(p_logits, ref)
    model._punct_bias = np.asarray(vocab["punct_bias"], dtype=np.float32)
    vocab["case_bias"] = case_bias(model, docs)
    vocab_path.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    write_manifest(out)
    return {k: vocab[k] for k in ("punct_bias", "case_bias")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/vi-text"))
    parser.add_argument("--out", type=Path, default=Path("shared/text/models/vi-punct"))
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    print(calibrate(args.out, args.data, args.seed))


if __name__ == "__main__":
    main()
