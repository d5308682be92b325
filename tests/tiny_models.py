"""Small, randomly initialised wav2vec2 CTC models built on disk for tests (nothing downloaded).

The model keeps the real conv feature encoder geometry (kernels 10,3,3,3,3,2,2 and strides
5,2,2,2,2,2,2: one frame per 320 samples, 20 ms at 16 kHz) so frame/time arithmetic is exercised
exactly as with the production checkpoint, but every layer is tiny so a forward pass over a few
seconds of audio takes milliseconds on CPU. Tests load it back through the production path,
``from_pretrained(out_dir)``.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import torch
from transformers import (
    Wav2Vec2Config,
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    Wav2Vec2Processor,
)

SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<s>", "</s>", "<unk>", "|")

_VOWELS = "aăâeêioôơuưy"
_TONE_MARKS = ("\u0300", "\u0301", "\u0309", "\u0303", "\u0323")  # huyền sắc hỏi ngã nặng


def _vietnamese_letters() -> list[str]:
    """a-z, the Vietnamese base letters with diacritics, and every toned vowel, all NFC."""
    letters = list("abcdefghijklmnopqrstuvwxyz") + list("ăâđêôơư")
    for vowel in _VOWELS:
        letters += [unicodedata.normalize("NFC", vowel + mark) for mark in _TONE_MARKS]
    assert all(len(letter) == 1 for letter in letters), "every letter must precompose in NFC"
    return letters


VI_VOCAB: dict[str, int] = {
    token: index for index, token in enumerate([*SPECIAL_TOKENS, *_vietnamese_letters()])
}

_LM_HEAD_WEIGHT_STD = 0.1
_BLANK_BIAS = 1.8
_DELIMITER_BIAS = 0.9
_SPECIAL_BIAS = -30.0


def tiny_config(*, layer_norm: bool = False) -> Wav2Vec2Config:
    """A 2-layer, 32-wide config; ``layer_norm`` picks the attention-mask-friendly variant."""
    return Wav2Vec2Config(
        vocab_size=len(VI_VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer" if layer_norm else "group",
        do_stable_layer_norm=layer_norm,
        pad_token_id=VI_VOCAB["<pad>"],
        bos_token_id=VI_VOCAB["<s>"],
        eos_token_id=VI_VOCAB["</s>"],
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        final_dropout=0.0,
        layerdrop=0.0,
        mask_time_prob=0.0,
    )


def _bias_lm_head(model: Wav2Vec2ForCTC) -> None:
    """Make random outputs varied: a peaky head, a blank that often (not always) wins, no specials.

    With the stock init every frame's logits are nearly flat, so argmax is decided by bias noise
    and the transcript is one repeated character or all blank. A larger weight spread makes the
    argmax follow the (random) acoustics; the blank and ``|`` biases give blanks and several words;
    ``<s>``/``</s>``/``<unk>`` are pushed down so transcripts are plain text.
    """
    head = model.lm_head
    with torch.no_grad():
        head.weight.normal_(0.0, _LM_HEAD_WEIGHT_STD)
        head.bias.zero_()
        head.bias[VI_VOCAB["<pad>"]] = _BLANK_BIAS
        head.bias[VI_VOCAB["|"]] = _DELIMITER_BIAS
        for token in ("<s>", "</s>", "<unk>"):
            head.bias[VI_VOCAB[token]] = _SPECIAL_BIAS


def build_tiny_wav2vec2(out_dir: Path, *, layer_norm: bool = False, seed: int = 0) -> Path:
    """Save a tiny Wav2Vec2ForCTC + Wav2Vec2Processor (and a model card) under ``out_dir``.

    ``layer_norm=False`` mirrors wav2vec2-base (group norm, no attention mask: padding changes
    outputs); ``layer_norm=True`` mirrors the large/XLS-R family (layer norm and an attention
    mask), the only kind the engine pads when batching.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = Wav2Vec2ForCTC(tiny_config(layer_norm=layer_norm))
    _bias_lm_head(model)
    model.eval()

    vocab_file = out_dir / "vocab.json"
    vocab_file.write_text(json.dumps(VI_VOCAB, ensure_ascii=False), encoding="utf-8")
    tokenizer = Wav2Vec2CTCTokenizer(
        str(vocab_file), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|"
    )
    feature_extractor = Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16_000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=layer_norm,
    )
    processor = Wav2Vec2Processor(feature_extractor=feature_extractor, tokenizer=tokenizer)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    (out_dir / "README.md").write_text(
        "---\nlanguage: vi\nlicense: cc-by-nc-4.0\ntags:\n- test\n---\n\n# tiny test model\n",
        encoding="utf-8",
    )
    return out_dir
