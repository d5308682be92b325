"""MODEL_CARD.md: data and licences, architecture, the command and seed, figures, checksums."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.text.punctuation import PunctuationModel

from .evaluate import measure, table
from .export import ARCHITECTURE, NAME, sha256
from .prepare import split

_CARD = """# {name}: Vietnamese punctuation and capitals

Restores, for each token of a recogniser's lowercase syllable stream, the punctuation after it
(none, comma, period, question mark, exclamation mark; `;` and `:` are folded into comma, `…`
into period) and its case (lower, Title, UPPER, or a mixed-case form from a lexicon learned from
the training text, {lexicon} forms such as "iPhone"). Tokens with digits (written by the number
step before this model runs) are one placeholder to the model and are returned unchanged.

## Data and licences
- Vietnamese Wikipedia (`wiki.txt.gz`: undertheseanlp/corpus.viwiki @0b727cc), **CC BY-SA**.
  This model is trained on text from Vietnamese Wikipedia (https://vi.wikipedia.org), written by
  Wikipedia's contributors and licensed under Creative Commons Attribution-ShareAlike
  (https://creativecommons.org/licenses/by-sa/4.0/); the model files are shared under the same
  terms. The vocabulary and mixed-case lexicon (`vocab.json`) are word lists drawn from that text.
- Vietnamese legal normative documents (`legal.txt.gz`: undertheseanlp/resources @cbdb3c3,
  CP_Vietnamese-VLC), not protected by copyright (Law on Intellectual Property, art. 15).
- Dân trí news (`news-dantri.txt.gz`) is used **for evaluation only**, never for training.

Cleaning (`training/punctuation/prepare.py`): `###` document lines, `# key = value` metadata,
`== headings ==`, reference / see-also / link sections, list items, mostly-uppercase titles and
lines that do not end a sentence are dropped. 3 % of Wikipedia articles (whole documents,
chosen by a seeded hash of their names) are held out for testing.

## Architecture
Two sequence taggers of one shape, their logits averaged inside one ONNX graph
(`training/punctuation/ensemble.py`). Each: syllable embeddings ({emb} dims, {vocab}
syllables), a width-5 convolution added to them, two bidirectional GRU layers ({hidden} units
each way) and two heads, a 5-way punctuation head (none , . ? !) and a 4-way case head (lower,
Title, UPPER, a mixed form from the lexicon). Trained on windows of {window} tokens of running
text (windows cross sentence and document boundaries, as a recogniser's stream does);
{rare_share:.0%} of the windows are drawn around a `?` or `!` because questions are rare in the
training text. The two differ in their seed (weights and batches; the data split and the
vocabulary are the same) and in that the second saw 5 % of its inputs as unknown words. Alone,
neither beats the other (news period F1 0.468 and 0.465, capitalisation 0.752 and 0.744); their
mean makes fewer mistakes than either: on news period 0.468 to 0.499, comma 0.411 to 0.434,
capitalisation 0.752 to 0.769 against the first alone, for twice the tagging time (about 75 ms
for 1,200 tokens on one thread) and twice the file.

At run time the stream is read in windows of 128 tokens, each token taken from the window where
it has at least 32 tokens on both sides. The input's first token starts a sentence and its last
ends one (the model picks `.`, `?` or `!`); a token after `.`, `?` or `!` is capitalised. After
the model, at run time (`shared/text/punctuation.py`, `questions.py`): a one-word sentence is
kept only when the end marks together reach 0.7; a sentence takes `?` when Vietnamese question
words say it asks (a final "không"/"chưa" closing a yes/no frame, an asking particle, a question
word not denied earlier, "tại sao"/"có phải" first), since the training text almost never asks;
a token with no vowel is an abbreviation and written in capitals when the model capitalises it
or never saw it; a closing particle ("ạ", "nhé") never starts a sentence nor takes a comma
before it, a lone "đâu" after a negation closes the sentence before, and "tôi"/"chúng" and a
form of address before "ơi" are lower case inside a sentence. The figures below are measured
through all of that.

Exported to ONNX with int8 weights where ONNX Runtime's dynamic quantisation applies (int8 costs
nothing measurable: a 400-step model and its fp32 export scored within 0.003 F1 on every
class). Tried before, on the same data: a dilated CNN (period F1 0.25 on news after 21 minutes
on a loaded CPU), an n-gram window tagger, four syllables each side (period 0.40, comma 0.36,
capitalisation 0.72 on news), and one tagger with 320 GRU units (1.7 passes, 46 minutes): it
scored the same as one 192-unit tagger on the whole held-out sets (news: period 0.462, comma
0.416, capitalisation 0.748) with a 15.0 MB file. More units and more passes had stopped paying
on this text; a second model averaged in did pay. Calibrating the offsets below on half of the
held-out Wikipedia articles instead of training documents changed no figure by more than 0.015
on news (and the wrong way): not taken.

Calibration (`training/punctuation/calibrate.py`): an offset per class is added to the averaged
logits before the argmax, each chosen for its class's F1 on 600 training documents (never on a
test set), because briefly trained taggers under-predict the rarer classes. Offsets: {offsets}.

## Training
```
python -m training.punctuation.train --out var/punct/a
python -m training.punctuation.train --out var/punct/b --model-seed 29 --unk-rate 0.05
python -m training.punctuation.ensemble var/punct/a var/punct/b --out shared/text/models/vi-punct
```
{members}

## Figures (held-out, text lowercased and stripped as a recogniser gives it)
Measured on the shipped int8 file at the end of training, by the code `bench/punctuation.py`
runs (`training/punctuation/evaluate.py`); the bench adds speed. Capitalisation F1: positives
are tokens whose reference is not all lowercase (digit tokens excluded); a hit when the
predicted written form equals the reference exactly.

{table}

**Targets not met.** The issue's targets on news are period ≥ 0.80, comma ≥ 0.65, question
≥ 0.60, capitalisation ≥ 0.90. Each tagger here saw about 2.5 passes over {train_tokens:.1f} M
tokens of encyclopedia and legal text; vi-punct-2 (one tagger, 0.7 of a pass, 12 minutes)
reached period 0.44, comma 0.38, question 0.07 and capitalisation 0.72 on the same news set,
vi-punct-3 (the first tagger here alone) 0.468, 0.411, 0.161 and 0.752. The rest of the gap
is mostly the domain: news and speech ask more questions, quote people and name more people
than Wikipedia and laws do, and the only news text here may not be trained on. In-domain text
under a licence that allows it, and a pre-trained encoder small enough for a CPU, are what would
close it.

## Files (sha256)
{files}
"""


def _member(name: str, run: dict[str, Any]) -> str:
    return (
        f"- {name}: seed {run['seed']}, model seed {run['model_seed']}, unknown-word rate "
        f"{run['unk_rate']}, {run['steps']} steps of {run['batch']} windows of {run['window']} "
        f"tokens, AdamW one-cycle lr {run['lr']}, {run['threads']} threads, {run['passes']} "
        f"passes; {run['minutes']:.0f} minutes of training ({run['cpu']})."
    )


def write_card(out: Path, data: Path, runs: list[dict[str, Any]]) -> None:
    """The card of the averaged pair in ``out``, from the two members' training records."""
    model = PunctuationModel.load(out)
    parts = split(data, runs[0]["seed"])
    results = {name: measure(model, (t for _, t in parts[name])) for name in ("wiki", "news")}
    files = "\n".join(
        f"- `{p.name}`: `{sha256(p)}`" for p in sorted(out.iterdir()) if p.name != "MODEL_CARD.md"
    )
    text = _CARD.format(
        **{k: v for k, v in runs[0].items() if k != "train_tokens"},
        name=NAME,
        lexicon=len(model._lexicon),
        train_tokens=runs[0]["train_tokens"] / 1e6,
        members="\n".join(_member(n, r) for n, r in zip(("first", "second"), runs, strict=True)),
        offsets=f"punctuation {model._punct_bias.tolist()}, case {model._case_bias.tolist()}",
        table=table(results),
        files=files,
    )
    (out / "MODEL_CARD.md").write_text(text, encoding="utf-8")
    print(table(results))
    print(f"architecture: {ARCHITECTURE}")
