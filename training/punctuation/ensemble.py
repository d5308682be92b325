"""Two trained taggers as one ONNX graph whose outputs are the mean of theirs.

Taggers trained from different seeds (and one of them on inputs partly hidden as unknown)
make partly different mistakes; the mean of their logits is right more often than either.
Both read the same ``ids`` and were trained on the same split and vocabulary, so the merged
graph keeps the runtime's input and output names and nothing else changes for it.

    python -m training.punctuation.ensemble A_DIR B_DIR [--out shared/text/models/vi-punct]

Then it calibrates the pair's logit offsets and writes its card (figures on the held-out sets).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import compose, helper, numpy_helper

from .calibrate import calibrate
from .card import write_card
from .export import write_manifest

OUTPUTS = ("punct", "case")


def merged(first: onnx.ModelProto, second: onnx.ModelProto) -> onnx.ModelProto:
    """One graph: both taggers side by side on ``ids``, each output the mean of the pair."""
    a = compose.add_prefix(first, "a/")
    b = compose.add_prefix(second, "b/")
    nodes = [*a.graph.node, *b.graph.node]
    for node in nodes:
        node.input[:] = ["ids" if name in ("a/ids", "b/ids") else name for name in node.input]
    half = numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half")
    for out in OUTPUTS:
        nodes.append(helper.make_node("Add", [f"a/{out}", f"b/{out}"], [f"{out}/sum"]))
        nodes.append(helper.make_node("Mul", [f"{out}/sum", "half"], [out]))
    outputs = []
    for value in first.graph.output:
        copy = onnx.ValueInfoProto()
        copy.CopyFrom(value)
        outputs.append(copy)
    graph = helper.make_graph(
        nodes,
        "tagger-pair",
        list(first.graph.input),
        outputs,
        [*a.graph.initializer, *b.graph.initializer, half],
    )
    model = helper.make_model(graph, opset_imports=list(first.opset_import))
    model.ir_version = first.ir_version
    onnx.checker.check_model(model)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path, help="a trained tagger's folder (train.py --out)")
    parser.add_argument("second", type=Path, help="another, same split and vocabulary")
    parser.add_argument("--out", type=Path, default=Path("shared/text/models/vi-punct"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data/vi-text"))
    args = parser.parse_args()
    vocabs = [json.loads((d / "vocab.json").read_text("utf-8")) for d in (args.first, args.second)]
    if vocabs[0]["tokens"] != vocabs[1]["tokens"]:
        raise SystemExit("the two taggers have different vocabularies: train both on one split")
    runs = [json.loads((d / "training.json").read_text()) for d in (args.first, args.second)]
    args.out.mkdir(parents=True, exist_ok=True)
    pair = merged(onnx.load(args.first / "model.onnx"), onnx.load(args.second / "model.onnx"))
    onnx.save(pair, args.out / "model.onnx")
    vocab = {"tokens": vocabs[0]["tokens"], "lexicon": vocabs[0]["lexicon"]}
    (args.out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    write_manifest(args.out)
    print("logit offsets", calibrate(args.out, args.data, runs[0]["seed"]))
    write_card(args.out, args.data, runs)


if __name__ == "__main__":
    main()
