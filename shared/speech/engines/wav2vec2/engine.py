"""wav2vec2 CTC engine: the first version's model path, plus timing, beam search and batching.

The baseline steps are kept: ``Wav2Vec2Processor`` + ``Wav2Vec2ForCTC.from_pretrained`` once,
``processor(audio, sampling_rate=16000)``, a forward pass without autograd, argmax decoding
equal to ``processor.batch_decode``. What is added: log-probabilities per chunk (for word
timings, confidences and beam search), reduced precision where the hardware has it, and
batching on GPU only where it cannot change the output. On CPU the conv front end and the
transformer each run on the path this machine measured fastest for them at the worker's first
start (torch fp32 or bf16, ONNX Runtime fp32, and for the transformer ONNX Runtime int8; see
``tuning.py``).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import cast

import numpy as np
import torch
from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor

from shared.errors import ErrorCode, SttError
from shared.speech.ctc import decode
from shared.speech.ctc_base import CtcDecoding, CtcVocab
from shared.speech.ctc_beam import get_decoder, pyctcdecode_labels
from shared.speech.device import (
    ComputeChoices,
    ComputePlan,
    cpu_threads,
    resolve_choices,
    resolve_device,
)
from shared.speech.engines.base import (
    SAMPLE_RATE,
    ChunkResult,
    DecodeOptions,
    EngineInfo,
    Float32Array,
    Segment,
)
from shared.speech.engines.model_card import card_license
from shared.speech.engines.wav2vec2.onnx_export import model_folder, onnx_available
from shared.speech.engines.wav2vec2.stages import Stage, build_stage, free_unused
from shared.speech.engines.wav2vec2.tuning import choose_plan
from shared.speech.tuning import TuningCache, cpu_model, probe_audio, tuning_key

_CUDA_BATCH_SIZE = 8
_ONNX_CACHE = Path.home() / ".cache" / "vi-stt" / "onnx"  # when the caller names no cache dir
log = logging.getLogger(__name__)
def plan_batches(lengths: list[int], batch_size: int, pad: bool) -> list[list[int]]:
    """Group chunk indices into model calls, longest first.

    With ``pad`` (models that take an attention mask) neighbours in length order share a call,
    so padding stays small. Without it only equal-length chunks share a call: group-norm
    wav2vec2 (the base models) sees zero padding as audio and would transcribe differently.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: list[list[int]] = []
    for index in order:
        last = groups[-1] if groups else []  # groups are never empty lists
        fits = 0 < len(last) < batch_size
        if fits and (pad or lengths[last[0]] == lengths[index]):
            last.append(index)
        else:
            groups.append([index])
    return groups


def _load(model: str, device: torch.device) -> tuple[Wav2Vec2Processor, Wav2Vec2ForCTC]:
    """``from_pretrained`` once; any failure (missing dir, offline Hub, OOM) is MODEL_LOAD_FAILED.

    ``Wav2Vec2Processor`` rather than ``AutoProcessor``: for repos that ship a KenLM,
    AutoProcessor returns ``Wav2Vec2ProcessorWithLM``, whose ``batch_decode`` does beam search.
    """
    try:
        processor = Wav2Vec2Processor.from_pretrained(model)
        network = Wav2Vec2ForCTC.from_pretrained(model, dtype=torch.float32)
        network.to(device).eval()  # type: ignore[arg-type]  # transformers' .to is typed unbound
    except Exception as exc:  # from_pretrained raises a dozen unrelated exception types
        raise SttError(
            ErrorCode.MODEL_LOAD_FAILED,
            f"could not load wav2vec2 model {model!r} on {device}: {exc}. Set STT_MODEL to a "
            "local directory holding a saved Wav2Vec2ForCTC and its processor, or to a Hub id "
            "this machine can reach (or has in its Hugging Face cache).",
        ) from exc
    return processor, network


class Wav2Vec2Engine:
    """A loaded wav2vec2 CTC model; one instance per worker process."""

    def __init__(
        self,
        model: str,
        device: str = "auto",
        precision: str = "auto",
        lm_path: Path | None = None,
        lm_alpha: float = 0.5,
        lm_beta: float = 1.0,
        license: str | None = None,  # shadows the builtin on purpose: EngineInfo's name
        batch_size: int = 0,
        runtime: str = "auto",
        threads: int = 0,
        cache_dir: Path | None = None,
    ) -> None:
        """``batch_size`` 0 means auto: 8 on CUDA, 1 on CPU (batching does not pay on CPU).

        ``runtime``/``precision`` narrow the compute paths (see ``resolve_choices``);
        ``cache_dir`` holds the ONNX exports and the measured choice; ``threads`` 0 means
        every usable core.
        """
        self.device = resolve_device(device)
        self.threads = cpu_threads(threads)
        if self.device.type == "cpu":
            torch.set_num_threads(self.threads)
        choices = resolve_choices(runtime, precision, self.device, onnx_available())
        self.processor, self.model = _load(model, self.device)
        config = self.model.config
        if config.vocab_size is None:  # Wav2Vec2ForCTC refuses to build without one
            raise SttError(ErrorCode.MODEL_LOAD_FAILED, f"{model!r} has no vocabulary size")
        self.vocab_size: int = config.vocab_size
        self.vocab = CtcVocab.from_tokenizer(self.processor.tokenizer, self.vocab_size)
        self.frame_s = config.inputs_to_logits_ratio / SAMPLE_RATE
        self.plan, self.stages = self._compute(choices, cache_dir or _ONNX_CACHE)
        self.dtype = ComputePlan.dtype_of(self.plan.conv) if self.stages is None else None
        self.pads = (
            self.stages is None  # only the model's own forward takes a mask: never pad else
            and config.feat_extract_norm == "layer"
            and bool(self.processor.feature_extractor.return_attention_mask)
        )
        auto_batch = _CUDA_BATCH_SIZE if self.device.type == "cuda" else 1
        self.batch_size = batch_size if batch_size > 0 else auto_batch
        self.lm_path = lm_path
        self.lm_alpha = lm_alpha
        self.lm_beta = lm_beta
        if lm_path is not None:  # load the LM now: a bad path should stop start-up, not a job
            if not Path(lm_path).is_file():
                raise SttError(
                    ErrorCode.MODEL_LOAD_FAILED,
                    f"language model {str(lm_path)!r} not found; fix or unset STT_LM_PATH",
                )
            get_decoder(pyctcdecode_labels(self.vocab), str(lm_path), lm_alpha, lm_beta)
        self.info = EngineInfo(
            engine="wav2vec2",
            model=model,
            device=str(self.device),
            license=license if license is not None else card_license(model),
            compute=f"{self.device.type}: {self.plan.describe()}",
        )

    def _compute(
        self, choices: ComputeChoices, cache_dir: Path
    ) -> tuple[ComputePlan, tuple[Stage, Stage] | None]:
        """The plan (measured when the settings leave a choice) and, unless the model's own
        forward runs it, its two stages; then torch's copy of what it does not run is freed."""
        built: dict[tuple[str, str], Stage] = {}

        def build(component: str, path: str) -> Stage:
            if (component, path) not in built:
                built[component, path] = build_stage(
                    self.model, component, path, cache_dir, self.threads
                )
            return built[component, path]

        try:
            plan = choices.only() or choose_plan(
                choices, build, self._probe(), *self._tuning(choices, cache_dir)
            )
            # The model's own forward (with its mask, under autocast) where one torch precision
            # runs both halves, except CPU bf16, which runs faster on bf16 copies (TorchStage).
            whole = plan.whole_torch and (self.device.type != "cpu" or plan.conv == "torch-fp32")
            stages = (
                None
                if whole
                else (build("conv", plan.conv), build("transformer", plan.transformer))
            )
        except SttError:
            raise
        except Exception as exc:  # exporter, quantiser and runtime raise many unrelated types
            raise SttError(
                ErrorCode.MODEL_LOAD_FAILED,
                f"could not prepare the wav2vec2 compute paths in {cache_dir}: {exc}. "
                "Set STT_RUNTIME=torch to use PyTorch only.",
            ) from exc
        built.clear()
        if stages is not None:
            free_unused(self.model, plan)
        log.info("wav2vec2 on %s: %s", self.device, plan.describe())
        return plan, stages

    def _probe(self) -> Float32Array:
        values = self.processor(probe_audio(), sampling_rate=SAMPLE_RATE, return_tensors="np")
        return np.asarray(values["input_values"], dtype=np.float32)

    def _tuning(self, choices: ComputeChoices, cache_dir: Path) -> tuple[TuningCache, str]:
        folder = model_folder(self.model, cache_dir)
        key = tuning_key(
            cpu=cpu_model(), threads=self.threads, choices=choices.pairs(), torch=torch.__version__
        )
        return TuningCache(folder), key

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def _frames(self, lengths: list[int]) -> list[int]:
        # an int64 tensor, which torch's types do not tell apart as a LongTensor
        counts = self.model._get_feat_extract_output_lengths(
            cast(torch.LongTensor, torch.tensor(lengths))
        )
        return [max(int(n), 0) for n in counts]

    def _forward(self, chunks: list[Float32Array], frames: list[int]) -> list[Float32Array]:
        """One model call; padding (when any) comes with the attention mask the model expects."""
        inputs = self.processor(
            chunks, sampling_rate=SAMPLE_RATE, padding=True, return_tensors="pt"
        )
        values = inputs["input_values"].to(self.device)
        mask = inputs.get("attention_mask")
        if self.stages is not None:
            conv, transformer = self.stages
            logits = torch.from_numpy(transformer(conv(values.numpy())))
        else:
            with torch.inference_mode(), self._autocast():
                mask = None if mask is None else mask.to(self.device)
                logits = self.model(values, attention_mask=mask).logits
        log_probs = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
        return [np.ascontiguousarray(row[:n]) for row, n in zip(log_probs, frames, strict=True)]

    def logits(self, chunks: list[Float32Array]) -> list[Float32Array]:
        """Per chunk, float32 ``frames x vocab`` log-probabilities, trimmed to its own frames.

        Chunks too short for one frame (under 25 ms) get an empty matrix without a model call.
        """
        audio = [np.asarray(chunk, dtype=np.float32) for chunk in chunks]
        if any(chunk.ndim != 1 for chunk in audio):
            raise ValueError("chunks must be 1-D mono float32 arrays at 16 kHz")
        frames = self._frames([len(chunk) for chunk in audio]) if audio else []
        out = [np.zeros((0, self.vocab_size), np.float32) for _ in audio]
        live = [i for i, count in enumerate(frames) if count > 0]
        groups = plan_batches([len(audio[i]) for i in live], self.batch_size, self.pads)
        for group in groups:
            indices = [live[g] for g in group]
            batch = [audio[i] for i in indices]
            rows = self._forward(batch, [frames[i] for i in indices])
            for i, row in zip(indices, rows, strict=True):
                out[i] = row
        return out

    def decode(self, log_probs: Float32Array, options: DecodeOptions) -> CtcDecoding:
        lm = (self.lm_path, self.lm_alpha, self.lm_beta)
        return decode(log_probs, self.vocab, options, lm, self.frame_s)

    def transcribe_batch(
        self, chunks: list[Float32Array], options: DecodeOptions
    ) -> list[ChunkResult]:
        """Greedy (default) or beam decoding; one Segment per non-empty chunk, holding its words."""
        results = []
        for log_probs in self.logits(chunks):
            decoded = self.decode(log_probs, options)
            if not decoded.text:
                results.append(ChunkResult(text=""))
                continue
            words = decoded.words
            start = words[0].start if words else 0.0
            end = words[-1].end if words else log_probs.shape[0] * self.frame_s
            segment = Segment(text=decoded.text, start=start, end=end, words=words)
            results.append(ChunkResult(text=decoded.text, segments=[segment]))
        return results
