"""Train the punctuation and capitals tagger on CPU, export it to ONNX (int8) and write its card.

    python -m training.punctuation.train --data ../shared/data/vi-text \
        --out shared/text/models/vi-punct

Seeded end to end (data split, vocabulary, window order, weights); a fixed number of steps, not a
time budget, so a rerun gives the same model on the same torch build. With the defaults: about
2 minutes of data preparation, 17 minutes of training on this shared 2-core machine, then about
5 minutes of calibration and held-out figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shared.text.punctuation import NGRAMS, REACH, UNIGRAMS

from .calibrate import calibrate
from .card import write_card
from .data import IGNORE, batch, build_vocab, encode, positions
from .export import export
from .prepare import split

log = logging.getLogger("train")


class Tagger(nn.Module):
    """Embeddings of the syllables around a token and of hashed bigrams and trigrams, one hidden
    layer, a punctuation head and a case head. A window model, not a BiLSTM or a convolution
    stack: on this shared 2-core CPU those trained at 1-2.5 k tokens/s and a dilated CNN was still
    far from fitting after 3 M tokens (period F1 0.25); this one sees the whole corpus in minutes.
    """

    def __init__(self, rows: int, dim: int, slots: int, hidden: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(rows, dim, padding_idx=0, sparse=True)
        self.hidden = nn.Sequential(
            nn.Linear(slots * dim, hidden),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )
        self.punct = nn.Linear(hidden, 5)
        self.case = nn.Linear(hidden, 4)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(self.emb(features).flatten(1))
        return self.punct(h), self.case(h)


def train(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    docs = [toks for _, toks in split(args.data, args.seed)["train"]]
    tokens, lexicon = build_vocab(docs, args.vocab, args.lexicon_min)
    data = encode(docs, tokens)
    del docs
    padded = np.pad(data.ids, REACH)
    log.info(
        "train stream %d tokens, vocab %d, lexicon %d", len(data.ids), len(tokens), len(lexicon)
    )
    slots = len(UNIGRAMS) + len(NGRAMS)
    model = Tagger(len(tokens) + args.buckets, args.emb, slots, args.hidden)
    # Sparse updates for the embedding rows a batch touches; dense Adam for the rest.
    dense = [p for n, p in model.named_parameters() if not n.startswith("emb.")]
    opts = [
        torch.optim.SparseAdam(list(model.emb.parameters()), lr=args.lr),
        torch.optim.AdamW(dense, lr=args.lr, weight_decay=0.01),
    ]
    scheds = [
        torch.optim.lr_scheduler.OneCycleLR(o, args.lr, total_steps=args.steps, pct_start=0.05)
        for o in opts
    ]
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE)
    order = np.empty(0, dtype=np.int64)
    began = time.monotonic()
    for step in range(1, args.steps + 1):
        if len(order) < args.batch:
            order = positions(data, args.rare_repeat, rng)
        rows = batch(data, padded, order[: args.batch], args.buckets, len(tokens))
        order = order[args.batch :]
        feats, punct, case = (torch.from_numpy(a) for a in rows)
        p_logits, c_logits = model(feats)
        loss = loss_fn(p_logits, punct) + loss_fn(c_logits, case)
        for opt in opts:
            opt.zero_grad()
        loss.backward()
        for opt, sched in zip(opts, scheds, strict=True):
            opt.step()
            sched.step()
        if step % 200 == 0 or step in (10, args.steps):
            spent = time.monotonic() - began
            rate = step * args.batch / spent
            log.info(
                "step %d/%d loss %.4f  %.0f tok/s  %.0f s",
                step,
                args.steps,
                loss.item(),
                rate,
                spent,
            )
    model.eval()
    args.work.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.work / "model.pt")  # to re-export without retraining
    args.out.mkdir(parents=True, exist_ok=True)
    vocab = {"tokens": tokens, "lexicon": lexicon, "buckets": args.buckets}
    (args.out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    minutes = (time.monotonic() - began) / 60
    export(model, args, slots)
    log.info("logit offsets %s", calibrate(args.out, args.data, args.seed))
    write_card(args, minutes)


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/vi-text"))
    parser.add_argument("--out", type=Path, default=Path("shared/text/models/vi-punct"))
    parser.add_argument("--work", type=Path, default=Path("var/punct"), help="fp32 export")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--buckets", type=int, default=1 << 18, help="hashed n-gram rows")
    parser.add_argument("--lexicon-min", type=int, default=5)
    parser.add_argument("--emb", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4096, help="tokens per step")
    parser.add_argument("--steps", type=int, default=2800)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--rare-repeat", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-limit", type=int, default=0, help="tokens per test set; 0: all")
    return parser


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train(arguments().parse_args())


if __name__ == "__main__":
    main()
