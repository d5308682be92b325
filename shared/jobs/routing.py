"""Named models and the queues that route jobs to the workers holding them.

A deployment may run workers of several models at once. `STT_MODELS` names what it offers
(`name=engine:model`, comma-separated); the unnamed STT_ENGINE/STT_MODEL pair is always offered as
`default`. A job asking for model X goes to queues `interactive.X` / `bulk.X`, which only workers
started with `STT_WORKER_MODEL=X` consume, so no worker ever receives audio for a model it lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import ErrorCode, SttError
from shared.settings import Settings

DEFAULT_MODEL_NAME = "default"
BASE_QUEUES = ("interactive", "bulk")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    engine: str
    model: str


def offered_models(settings: Settings) -> dict[str, ModelSpec]:
    offered = {DEFAULT_MODEL_NAME: ModelSpec(DEFAULT_MODEL_NAME, settings.engine, settings.model)}
    for name, spec in settings.models.items():
        engine, sep, model = spec.partition(":")
        if not sep or engine not in ("wav2vec2", "whisper", "conformer") or not model:
            raise ValueError(f"STT_MODELS entry {name}={spec!r}: expected name=ENGINE:MODEL")
        offered[name] = ModelSpec(name, engine, model)
    return offered


def resolve_model(settings: Settings, name: str | None) -> ModelSpec:
    offered = offered_models(settings)
    key = name or DEFAULT_MODEL_NAME
    if key not in offered:
        raise SttError(
            ErrorCode.UNKNOWN_MODEL,
            f"unknown model {key!r}; this deployment offers: {', '.join(sorted(offered))}",
        )
    return offered[key]


def queue_for(base: str, model_name: str) -> str:
    return base if model_name == DEFAULT_MODEL_NAME else f"{base}.{model_name}"


def base_queue(queue: str) -> str:
    return queue.split(".", 1)[0]


def worker_settings(settings: Settings) -> Settings:
    """The settings a worker runs with: its named model's engine, model id and queues."""
    spec = resolve_model(settings, settings.worker_model)
    if spec.name == DEFAULT_MODEL_NAME:
        return settings
    return settings.model_copy(
        update={
            "engine": spec.engine,
            "model": spec.model,
            "worker_queues": [queue_for(q, spec.name) for q in BASE_QUEUES],
        }
    )
