"""Pick and load the configured ASR engine (once per worker process).

Engine modules are imported lazily: each pulls in a heavy runtime (transformers/torch for
wav2vec2, CTranslate2 for Whisper), and a worker should only pay for the one it uses.
"""

from __future__ import annotations

from shared.settings import Settings
from shared.speech.engines.base import Engine

# STT_PRECISION in CTranslate2's words, so STT_PRECISION=fp32 turns reduced precision off for
# either engine ("auto" leaves the Whisper engine's own per-device default in place).
_WHISPER_COMPUTE_TYPE = {
    "auto": "auto",
    "fp32": "float32",
    "fp16": "float16",
    "bf16": "bfloat16",
    "int8": "int8",
}


def load_engine(settings: Settings) -> Engine:
    """Build the engine named by ``STT_ENGINE`` from the settings; raises SttError on failure."""
    if settings.engine == "wav2vec2":
        from shared.speech.engines.wav2vec2.engine import Wav2Vec2Engine

        return Wav2Vec2Engine(
            settings.model,
            settings.device,
            settings.precision,
            settings.lm_path,
            settings.lm_alpha,
            settings.lm_beta,
            settings.model_license,
            batch_size=settings.batch_size,
            runtime=settings.runtime,
            threads=settings.threads,
            cache_dir=settings.var_dir.resolve() / "cache" / "onnx",
        )
    if settings.engine == "whisper":
        from shared.speech.engines.whisper.engine import WhisperEngine

        return WhisperEngine(
            settings.model,
            settings.device,
            compute_type=_WHISPER_COMPUTE_TYPE[settings.precision],
            license=settings.model_license,
        )
    if settings.engine == "conformer":
        return load_conformer(settings, settings.model, settings.model_license)
    raise ValueError(
        f"unknown engine {settings.engine!r}: use STT_ENGINE=wav2vec2, whisper or conformer"
    )


def load_conformer(
    settings: Settings,
    model: str,
    license: str | None,
    fallback: bool = False,
    note: str | None = None,
) -> Engine:
    """The Conformer CTC engine on a model directory, with the settings' runtime choices."""
    from shared.speech.engines.conformer.engine import ConformerEngine

    return ConformerEngine(
        model,
        settings.device,
        layout=settings.conformer_layout,
        threads=settings.threads,
        optimization=settings.onnx_optimization,
        precision=settings.precision,
        batch_size=settings.batch_size,
        lm_path=settings.lm_path,
        lm_alpha=settings.lm_alpha,
        lm_beta=settings.lm_beta,
        license=license,
        fallback=fallback,
        note=note,
        shared=True if settings.worker_concurrency > 1 else None,
        tuning_dir=settings.var_dir.resolve() / "cache" / "tuning",
        graph_dir=settings.var_dir.resolve() / "cache" / "onnx",
    )
