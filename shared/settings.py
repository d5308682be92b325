"""One typed settings object, read from ``STT_*`` environment variables.

Everything configurable lives here and is passed explicitly to the code that needs it; nothing
below ``shared`` reads ``os.environ`` on its own. Defaults are the embedded ones a newcomer gets
from ``make run``: SQLite and a filesystem broker under ``var/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MODEL = "khanhld/wav2vec2-base-vietnamese-160h"


def _split_list(value: object) -> object:
    """Accept a comma-separated string (how lists arrive from the environment) or a real list."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STT_", extra="ignore")

    # --- model and engine -------------------------------------------------------------------
    model: str = DEFAULT_MODEL
    engine: Literal["wav2vec2", "whisper"] = "wav2vec2"
    device: str = "auto"
    model_license: str | None = None
    model_cache_dir: Path | None = None  # where assembled models live; None: ~/.cache/vi-stt

    # --- storage and queue ------------------------------------------------------------------
    var_dir: Path = Path("var")
    database_url: str = ""
    broker_url: str = ""
    data_dir: Path = Path("")
    allowed_audio_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)

    # --- limits -----------------------------------------------------------------------------
    max_upload_mb: float = 100.0
    max_duration_s: float = 300.0
    max_duration_bulk_s: float = 4 * 3600.0
    task_soft_time_limit_s: int = 1800
    task_time_limit_s: int = 1900
    bulk_time_limit_s: int = 6 * 3600
    legacy_wait_s: float = 600.0

    # --- legacy endpoint and HTTP server ----------------------------------------------------
    default_audio: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8789
    public_url: str = ""

    # --- worker -----------------------------------------------------------------------------
    worker_queues: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["interactive", "bulk"]
    )
    worker_heartbeat_s: float = 10.0
    max_attempts: int = 3
    batch_size: int = 0  # chunks per model call; 0 = auto (1 on CPU, 8 on CUDA)

    # --- web and metrics (issue 6) ----------------------------------------------------------
    # Each worker process serves Prometheus metrics here; 0 turns the exporter off. Several
    # workers on one host (one per GPU) take the next free port, up to `_tries` ports above.
    worker_metrics_port: int = 9808
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port_tries: int = 16

    # --- decoding and speed (issue 3) -------------------------------------------------------
    chunk_s: float = 25.0
    decoder: Literal["greedy", "beam"] = "greedy"
    beam_width: int = 32
    lm_path: Path | None = None
    lm_alpha: float = 0.5
    lm_beta: float = 1.0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"

    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"

    @field_validator("allowed_audio_roots", "worker_queues", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split_list(value)

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        """Fill the embedded defaults from ``var_dir`` so one variable moves them all."""
        var = self.var_dir.resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{var / 'stt.sqlite3'}"
        if not self.broker_url:
            self.broker_url = "filesystem://"
        if self.data_dir == Path(""):
            self.data_dir = var / "data"
        self.data_dir = self.data_dir.resolve()
        if not self.allowed_audio_roots:
            self.allowed_audio_roots = [var / "audio"]
        self.allowed_audio_roots = [p.resolve() for p in self.allowed_audio_roots]
        return self

    @property
    def model_explicit(self) -> bool:
        """Whether STT_MODEL was set by the operator (only an implicit default may fall back)."""
        return "model" in self.model_fields_set

    @property
    def broker_folder(self) -> Path:
        return self.var_dir.resolve() / "broker"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def max_duration_for(self, queue: str) -> float:
        return self.max_duration_bulk_s if queue == "bulk" else self.max_duration_s


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment; keyword overrides win (tests use them)."""
    return Settings(**overrides)  # type: ignore[arg-type]
