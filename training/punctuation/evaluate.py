"""Held-out figures for a punctuation model, measured through the runtime class itself.

Each held-out document is lowercased and stripped the way a recogniser's output is (tokens with
digits kept as written, as the number-writing step leaves them), the documents run on as one
stream, and the model's output is compared token by token with the written reference.

Capitalisation F1: the positives are tokens whose reference form is not all lowercase (tokens
with digits excluded); a predicted token counts as a hit when its cased form equals the
reference form exactly; precision divides hits by tokens predicted not all lowercase, recall by
the reference positives.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.text.punctuation import NUM, PunctuationModel, model_key

from .prepare import Token

CLASSES = {",": "comma", ".": "period", "?": "question", "!": "exclamation"}
_CHUNK = 5000  # tokens per restore call: long streams, as a long recording would give


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def prf(self) -> tuple[float, float, float]:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)


@dataclass
class Figures:
    tokens: int = 0
    punct: dict[str, Counts] = field(default_factory=lambda: {k: Counts() for k in CLASSES})
    case: Counts = field(default_factory=Counts)

    def add(self, ref: list[Token], out_text: list[str], out_punct: list[str]) -> None:
        for (form, rp), text, pp in zip(ref, out_text, out_punct, strict=True):
            self.tokens += 1
            for mark, counts in self.punct.items():
                counts.tp += rp == mark and pp == mark
                counts.fp += rp != mark and pp == mark
                counts.fn += rp == mark and pp != mark
            if model_key(form) == NUM:
                continue
            ref_pos, pred_pos = form != form.lower(), text != text.lower()
            self.case.tp += ref_pos and text == form
            self.case.fp += pred_pos and text != form
            self.case.fn += ref_pos and text != form

    def rows(self) -> dict[str, tuple[float, float, float]]:
        rows = {CLASSES[m]: c.prf() for m, c in self.punct.items()}
        rows["capitalisation"] = self.case.prf()
        return rows


def measure(model: PunctuationModel, docs: Iterable[list[Token]], limit: int = 0) -> Figures:
    """Figures over the documents (the first ``limit`` tokens of the stream when limit > 0)."""
    stream: list[Token] = []
    for toks in docs:
        stream.extend(toks)
        if limit and len(stream) >= limit:
            stream = stream[:limit]
            break
    figures = Figures()
    for i in range(0, len(stream), _CHUNK):
        ref = stream[i : i + _CHUNK]
        spoken = [form if model_key(form) == NUM else form.lower() for form, _ in ref]
        out = model.restore(spoken)
        figures.add(ref, [r.text for r in out], [r.punct for r in out])
    return figures


def table(results: dict[str, Figures]) -> str:
    """A Markdown table: one row per class, P/R/F1 per test set."""
    sets = list(results)
    head = "| class | " + " | ".join(f"{s} P | {s} R | {s} F1" for s in sets) + " |"
    lines = [head, "|---" * (1 + 3 * len(sets)) + "|"]
    for row in ["period", "comma", "question", "exclamation", "capitalisation"]:
        cells = [f"{v:.3f}" for s in sets for v in results[s].rows()[row]]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    sizes = ", ".join(f"{s}: {f.tokens:,} tokens" for s, f in results.items())
    return "\n".join(lines) + f"\n\n({sizes})"
