"""Raw Vietnamese text to (written form, following punctuation) tokens, split by whole documents.

The shared corpora are raw dumps: headings, list items, reference sections, metadata and
document marker lines are still in. Only prose lines that end a sentence are kept, so every
kept token's label (the punctuation after it, its written case) is one a reader would write.
Held-out documents are chosen by a seeded shuffle of document names, never by sentence, so the
figures measure text the model has not seen.

    python -m training.punctuation.prepare --data ../shared/data/vi-text   # prints counts
"""

from __future__ import annotations

import argparse
import gzip
import random
import re
from collections.abc import Iterator
from pathlib import Path

PUNCTS = ("", ",", ".", "?", "!")
# Priority when two marks meet on one token ("...?", "?!"): the stronger sentence end wins.
_RANK = {"": 0, ",": 1, ".": 2, "!": 3, "?": 4}
_LEAD = re.compile(r"^[^\w]+")
_TRAIL = re.compile(r"[^\w]+$")
_SENTENCE_END = re.compile(r"[.?!…][\"”’)\]»]*$")
_LIST_ITEM = re.compile(r"^\s*([-*+•–—]|\d+[.)]|[a-zđ][)]|[IVX]+\.)\s")
# Abbreviations whose period is not a sentence end when a capitalised word follows.
_ABBREV = {"TP", "Tp", "TS", "ThS", "PGS", "GS", "BS", "St", "Mr", "Mrs", "Dr", "Th", "Q", "P"}
HELD_OUT_FRACTION = 0.03

Token = tuple[str, str]  # (written form without surrounding punctuation, punctuation after it)


def mark_of(tail: str) -> str:
    """The one mark a run of trailing punctuation stands for (';' and ':' fold into ',')."""
    if "?" in tail:
        return "?"
    if "!" in tail:
        return "!"
    if "." in tail or "…" in tail:
        return "."
    if any(c in tail for c in ",;:"):
        return ","
    return ""


def tokenise(line: str) -> list[Token]:
    """Whitespace tokens, punctuation peeled off; a bare mark ("-", "…") joins the token before."""
    out: list[Token] = []
    raws = line.split()
    for i, raw in enumerate(raws):
        core = _TRAIL.sub("", _LEAD.sub("", raw))
        trail = _TRAIL.search(raw)
        tail = trail.group() if trail else ""
        mark = mark_of(tail)
        if not core:
            if out and _RANK[mark] > _RANK[out[-1][1]]:
                out[-1] = (out[-1][0], mark)
            continue
        nxt = raws[i + 1] if i + 1 < len(raws) else ""
        if mark == "." and tail == "." and nxt[:1].isupper():
            if core in _ABBREV or (len(core) == 1 and core.isupper()):
                mark = ""
        out.append((core, mark))
    return out


def keep_line(line: str) -> bool:
    """Prose only: no headings, lists, metadata, all-caps titles or lines without a sentence end."""
    text = line.strip()
    if len(text.split()) < 4 or text.startswith(("#", "==", "|", "{", "!")):
        return False
    if _LIST_ITEM.match(text) or not _SENTENCE_END.search(text):
        return False
    letters = [c for c in text if c.isalpha()]
    return not letters or sum(c.isupper() for c in letters) / len(letters) < 0.5


def documents(path: Path) -> Iterator[tuple[str, list[Token]]]:
    """(document name, its kept tokens in order) for each `### name` block of a gzip'd file."""
    name, tokens = "", []
    skipping = False  # inside a references / see-also / links section
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("### "):
                if tokens:
                    yield name, tokens
                name, tokens, skipping = line[4:].strip(), [], False
                continue
            if line.startswith("=="):
                skipping = any(w in line for w in ("Tham khảo", "Liên kết", "Xem thêm", "Chú"))
                continue
            if not skipping and keep_line(line):
                tokens.extend(tokenise(line))
    if tokens:
        yield name, tokens


def is_held_out(name: str, seed: int) -> bool:
    """Stable per-document choice: the same names are held out by train.py and bench."""
    return random.Random(f"{seed}:{name}").random() < HELD_OUT_FRACTION


def split(data: Path, seed: int) -> dict[str, Iterator[tuple[str, list[Token]]]]:
    """Train (wiki + legal minus held-out wiki), held-out wiki, and news (evaluation only)."""

    def train() -> Iterator[tuple[str, list[Token]]]:
        for doc in documents(data / "wiki.txt.gz"):
            if not is_held_out(doc[0], seed):
                yield doc
        yield from documents(data / "legal.txt.gz")

    def held() -> Iterator[tuple[str, list[Token]]]:
        return (d for d in documents(data / "wiki.txt.gz") if is_held_out(d[0], seed))

    return {"train": train(), "wiki": held(), "news": documents(data / "news-dantri.txt.gz")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/vi-text"))
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    for part, docs in split(args.data, args.seed).items():
        n_docs = n_tok = 0
        counts = dict.fromkeys(PUNCTS, 0)
        for _, toks in docs:
            n_docs += 1
            n_tok += len(toks)
            for _, mark in toks:
                counts[mark] += 1
        print(part, n_docs, "documents", n_tok, "tokens", counts)


if __name__ == "__main__":
    main()
