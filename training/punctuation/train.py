"""Train one punctuation and capitals tagger on CPU and export it to ONNX (int8).

The shipped model is two of these averaged (``training.punctuation.ensemble``, which also
calibrates it and writes its card)::

    python -m training.punctuation.train --out var/punct/a
    python -m training.punctuation.train --out var/punct/b --model-seed 29 --unk-rate 0.05
    python -m training.punctuation.ensemble var/punct/a var/punct/b   # into shared/text/models

Seeded end to end (data split, vocabulary, window order, weights); a fixed number of steps, not a
time budget, so a rerun gives the same model on the same torch build. With the defaults: about
2 minutes of data preparation, 25-50 minutes of training on a 2-core CPU (2.5 passes over the
training text, batches of 128 windows: 9,500-19,500 tokens a second, by CPU), then a minute of
calibration. ``training.json`` beside the model records what the card needs of the run.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .calibrate import calibrate
from .data import IGNORE, UNK_ID, build_vocab, encode, windows
from .export import export
from .prepare import split

log = logging.getLogger("train")


class Tagger(nn.Module):
    """Syllable embeddings, a convolution over five neighbours, two bidirectional GRU layers and
    two heads (punctuation after each token, its case). The GRUs see the whole window on both
    sides: a sentence end is decided by how the next words begin as much as by the last ones.
    An n-gram window tagger (four syllables either side) reached period F1 0.40 on the news
    set; the dilated convolution stack that came before it underfit on a loaded machine."""

    def __init__(self, rows: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(rows, dim, padding_idx=0)
        self.conv = nn.Conv1d(dim, dim, 5, padding=2)
        self.gru = nn.GRU(dim, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.drop = nn.Dropout(0.1)
        self.punct = nn.Linear(2 * hidden, 5)
        self.case = nn.Linear(2 * hidden, 4)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.emb(ids)
        x = x + torch.nn.functional.gelu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        h = self.drop(self.gru(x)[0])
        return self.punct(h), self.case(h)


def train(args: argparse.Namespace) -> None:
    args.work = args.work or args.out / "fp32"
    # The data split keeps --seed, so models of several --model-seed share held-out documents
    # and a vocabulary.
    model_seed = args.seed if args.model_seed is None else args.model_seed
    torch.manual_seed(model_seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(model_seed)
    docs = [toks for _, toks in split(args.data, args.seed)["train"]]
    tokens, lexicon = build_vocab(docs, args.vocab, args.lexicon_min)
    data = encode(docs, tokens)
    del docs
    log.info(
        "train stream %d tokens, vocab %d, lexicon %d", len(data.ids), len(tokens), len(lexicon)
    )
    model = Tagger(len(tokens), args.emb, args.hidden)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, args.lr, total_steps=args.steps, pct_start=0.05
    )
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE)
    began = time.monotonic()
    model.train()
    for step in range(1, args.steps + 1):
        at = windows(data, args.batch, args.window, args.rare_share, rng)
        ids, punct, case = (torch.from_numpy(a[at]) for a in (data.ids, data.punct, data.case))
        if args.unk_rate:  # unseen words at run time (names, recognition errors): practise them
            ids = ids.masked_fill(torch.rand(ids.shape) < args.unk_rate, UNK_ID)
        p_logits, c_logits = model(ids)
        loss = loss_fn(p_logits.reshape(-1, 5), punct.reshape(-1))
        loss = loss + loss_fn(c_logits.reshape(-1, 4), case.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step in (10, args.steps):
            spent = time.monotonic() - began
            rate = step * args.batch * args.window / spent
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
    vocab = {"tokens": tokens, "lexicon": lexicon}
    (args.out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    minutes = (time.monotonic() - began) / 60
    export(model, args)
    log.info("logit offsets %s", calibrate(args.out, args.data, args.seed))
    run = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    run |= {"model_seed": model_seed, "minutes": round(minutes, 1), "train_tokens": len(data.ids)}
    run["cpu"] = cpu_name()
    run["passes"] = round(args.steps * args.batch * args.window / len(data.ids), 2)
    (args.out / "training.json").write_text(json.dumps(run, indent=2) + "\n")


def cpu_name() -> str:
    """Training time means little without the CPU it was measured on."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/vi-text"))
    parser.add_argument("--out", type=Path, default=Path("var/punct/a"), help="one tagger")
    parser.add_argument("--work", type=Path, help="fp32 export (default: OUT/fp32)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--lexicon-min", type=int, default=5)
    parser.add_argument("--emb", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=192)
    parser.add_argument("--batch", type=int, default=128, help="windows per step")
    parser.add_argument("--window", type=int, default=128, help="tokens per window")
    parser.add_argument("--steps", type=int, default=1800)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--rare-share", type=float, default=0.15, help="windows around a ? or !")
    parser.add_argument("--model-seed", type=int, help="weights and batches (default: --seed)")
    parser.add_argument("--unk-rate", type=float, default=0.0, help="inputs shown as unknown")
    parser.add_argument("--threads", type=int, default=2)
    return parser


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train(arguments().parse_args())


if __name__ == "__main__":
    main()
