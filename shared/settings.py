"""One typed settings object, read from ``STT_*`` environment variables.

Everything configurable lives here and is passed explicitly to the code that needs it; nothing
below ``shared`` reads ``os.environ`` on its own. Defaults are the embedded ones a newcomer gets
from ``make run``: SQLite and a filesystem broker under ``var/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, overload

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MODEL = "khanhld/wav2vec2-base-vietnamese-160h"


@overload
def _split_list(value: str) -> list[str]: ...
@overload
def _split_list(value: object) -> object: ...
def _split_list(value: object) -> object:
    """Accept a comma-separated string (how lists arrive from the environment) or a real list."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _mask_url_password(url: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://user:***@host``; other URLs unchanged."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"


# The settings own the format of their variables; ``shared.apikeys`` applies the same name rule
# to the keys ``stt apikey create`` stores.
KEY_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
KEY_HASH_RE = re.compile(r"[0-9a-f]{64}")
_KEYS_FORMAT = (
    "STT_API_KEYS entries are name:sha256hex (the SHA-256 of a key, never the key itself)"
)


def valid_key_name(name: str) -> bool:
    return KEY_NAME_RE.fullmatch(name) is not None


def parse_configured_keys(value: object) -> dict[str, str]:
    """``"a:<sha256>,b:<sha256>"`` (or a list of those, or a dict) -> {name: sha256}.

    Raises ValueError without echoing the value: a plaintext key pasted here must not end up in
    a log line or a traceback.
    """
    if isinstance(value, dict):
        pairs = list(value.items())
    else:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError(_KEYS_FORMAT)
        pairs = [str(item).strip().partition(":")[::2] for item in items if str(item).strip()]
    keys: dict[str, str] = {}
    for name, digest in pairs:
        name, digest = str(name).strip(), str(digest).strip().lower()
        if not valid_key_name(name) or KEY_HASH_RE.fullmatch(digest) is None:
            raise ValueError(_KEYS_FORMAT)
        if name in keys:
            raise ValueError("STT_API_KEYS names a key twice")
        keys[name] = digest
    return keys


class Settings(BaseSettings):
    # Errors never echo input values: secrets and database passwords pass through here.
    model_config = SettingsConfigDict(env_prefix="STT_", extra="ignore", hide_input_in_errors=True)

    # --- model and engine -------------------------------------------------------------------
    model: str = DEFAULT_MODEL
    engine: Literal["wav2vec2", "whisper", "conformer"] = "wav2vec2"
    device: str = "auto"
    model_license: str | None = None
    model_cache_dir: Path | None = None  # where assembled models live; None: ~/.cache/vi-stt
    # Named models a deployment offers (`name=engine:model,...`) and the one this worker serves.
    models: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    worker_model: str = "default"

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
    # POST /v1/audio/transcriptions' wait; unset: the legacy route's (clients of both expect one).
    openai_wait_s: float | None = None

    # --- legacy endpoint and HTTP server ----------------------------------------------------
    default_audio: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8789
    api_threads: int = Field(default=16, ge=2)  # threads of the HTTP server (`stt api`, `run`)
    # Requests waiting for their job at once (OpenAI-compatible and /wav2vec2 calls), each
    # holding a server thread; 0: all but four of api_threads, kept for polls and health.
    max_waiting_requests: int = Field(default=0, ge=0)
    public_url: str = ""

    # --- worker -----------------------------------------------------------------------------
    worker_queues: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["interactive", "bulk"]
    )
    worker_heartbeat_s: float = 10.0
    max_attempts: int = 3
    batch_size: int = 0  # chunks per model call; 0 = auto (1 on CPU, 8 on CUDA)
    # Jobs one worker process runs at once (threads sharing one model). Above 1, the Conformer's
    # chunks of those jobs share graph calls: what keeps a GPU busy. 1 keeps Celery's prefork
    # child per job, with its time limits and per-job memory bound.
    worker_concurrency: int = Field(default=1, ge=1)

    # --- web and metrics ----------------------------------------------------------
    # Each worker process serves Prometheus metrics here; 0 turns the exporter off. Several
    # workers on one host (one per GPU) take the next free port, up to `_tries` ports above.
    worker_metrics_port: int = 9808
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port_tries: int = 16

    # --- decoding and speed -------------------------------------------------------
    chunk_s: float = 25.0
    decoder: Literal["auto", "greedy", "beam"] = "auto"  # auto: the engine's own best way
    beam_width: int = 32
    lm_path: Path | None = None
    lm_alpha: float = 0.5
    lm_beta: float = 1.0
    precision: Literal["auto", "fp32", "bf16", "fp16", "int8"] = "auto"
    # wav2vec2 on CPU: "onnx" runs the transformer in ONNX Runtime (int8), "torch" all in torch
    runtime: Literal["auto", "torch", "onnx"] = "auto"
    threads: int = Field(default=0, ge=0)  # CPU threads for the model; 0 = every usable core
    # Conformer CTC: how the chunk loop walks the features (engines/conformer/streams.py)
    # and ONNX Runtime's graph optimisation level ("auto": the fastest of the paths the accuracy
    # gate admitted for this CPU family, engines/conformer/gate.json, timed at first start).
    conformer_layout: Literal["sdk", "wenet"] = "sdk"
    onnx_optimization: Literal["auto", "disable", "basic", "extended", "all"] = "auto"

    # --- written transcripts ------------------------------------------------------
    # Transcripts leave as written Vietnamese (numbers, punctuation, capitals) unless a job asks
    # otherwise; off here serves the recogniser's spoken form to every job.
    formatting: bool = True
    punctuation_model: Path | None = None  # a directory like shared/text/models/vi-punct
    decimal_separator: Literal[",", "."] = ","  # Vietnamese writes 12,5 ...
    thousands_separator: Literal[".", ",", " ", ""] = "."  # ... and 1.000

    @model_validator(mode="after")
    def _separators_differ(self) -> Settings:
        if self.decimal_separator == self.thousands_separator:
            raise ValueError("STT_DECIMAL_SEPARATOR and STT_THOUSANDS_SEPARATOR must differ")
        return self

    # --- backfill and batches -----------------------------------------------------
    backfill_max_in_flight: int = Field(default=50, ge=1)  # unfinished jobs per backfill run
    backfill_poll_s: float = Field(default=0.5, gt=0)  # how often a run checks its jobs
    batch_max_paths: int = Field(default=1000, ge=1)  # paths per POST /v1/batches

    # --- webhooks -----------------------------------------------------------------
    # whsec_<base64> secrets: deliveries are signed with the first; receivers may accept several.
    webhook_secrets: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)
    # Host names and/or CIDRs a callback may reach although they are not public addresses.
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Delay before each retry: one attempt plus one per entry, then the event is given up.
    webhook_retry_schedule_s: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0]
    )
    webhook_retry_jitter: float = Field(default=0.2, ge=0, le=1)  # +- this fraction of a delay
    webhook_max_retry_after_s: float = Field(default=86400.0, ge=0)  # cap on a receiver's ask
    webhook_connect_timeout_s: float = Field(default=3.0, gt=0)
    webhook_read_timeout_s: float = Field(default=10.0, gt=0)
    webhook_sweep_interval_s: float = Field(default=5.0, gt=0)  # workers look for due rows
    webhook_lease_s: float = Field(default=60.0, gt=0)  # a claim older than this is retaken

    @field_validator(
        "webhook_secrets", "webhook_allowed_hosts", "webhook_retry_schedule_s", mode="before"
    )
    @classmethod
    def _webhook_lists(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("webhook_secrets")
    @classmethod
    def _webhook_secrets_valid(cls, value: list[str]) -> list[str]:
        """A malformed secret stops the process at start, not at the first delivery."""
        # The one rule the settings borrow: shared.webhook_signing imports nothing at all (a
        # receiver may copy the file), so this points at a leaf, never back up the layers.
        from shared.webhook_signing import secret_key

        for secret in value:
            secret_key(secret)
        return value

    @field_validator("webhook_retry_schedule_s")
    @classmethod
    def _webhook_schedule_valid(cls, value: list[float]) -> list[float]:
        if any(delay < 0 for delay in value):
            raise ValueError("retry delays cannot be negative")
        return value

    # --- security -----------------------------------------------------------------
    # `name:sha256hex` pairs: only the SHA-256 of each client key is configured, never the key.
    # Any key here or in the database (`stt apikey create`) turns authentication on; with none
    # the API is open to anyone who can reach it (the embedded default).
    api_keys: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict, repr=False)
    # How much a worker's private memory may grow during one job (decoder bombs); 0: no limit.
    worker_job_memory_mb: int = Field(default=4096, ge=0)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _api_keys(cls, value: object) -> object:
        """Parse and check at start: a plaintext key or a typo stops the process, unechoed."""
        return parse_configured_keys(value)

    # --- reliability --------------------------------------------------------------
    # Queued jobs per base queue (interactive, bulk) above which submissions get 503 queue_full.
    max_queued_jobs: int = Field(default=1000, ge=0)  # 0: no limit
    queue_full_retry_after_s: int = Field(default=30, ge=1)
    # The reconciler (a thread in every worker, or `stt reconcile`): 0 turns the thread off.
    reconcile_interval_s: float = Field(default=30.0, ge=0)
    reconcile_unsent_after_s: float = Field(default=60.0, gt=0)  # committed, never sent
    reconcile_queued_after_s: float = Field(default=300.0, gt=0)  # sent, message gone
    reconcile_orphan_after_s: float = Field(default=60.0, gt=0)  # processing, no live run
    reconcile_batch: int = Field(default=500, ge=1)  # rows per rule per pass
    # SIGTERM: a running job gets this long to finish, then goes back to the queue; 0: no bound.
    worker_shutdown_grace_s: float = Field(default=60.0, ge=0)
    # Worker writes (claim, finish) retry this long while the database is unreachable.
    db_retry_max_s: float = Field(default=600.0, ge=0)
    db_retry_first_delay_s: float = Field(default=0.5, gt=0)
    db_retry_max_delay_s: float = Field(default=10.0, gt=0)

    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"

    @field_validator("allowed_audio_roots", "worker_queues", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("models", mode="before")
    @classmethod
    def _named_models(cls, value: object) -> object:
        if isinstance(value, str):
            pairs = (item.partition("=") for item in _split_list(value))
            return {name.strip(): spec.strip() for name, _, spec in pairs}
        return value

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

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:  # pydantic's signature
        """Passwords in URLs stay out of logs and tracebacks that print the settings."""
        for name, value in super().__repr_args__():
            if name in ("database_url", "broker_url") and isinstance(value, str):
                value = _mask_url_password(value)
            yield name, value

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

    @property
    def waiting_slots(self) -> int:
        return self.max_waiting_requests or max(1, self.api_threads - 4)

    @property
    def openai_wait_limit_s(self) -> float:
        return self.legacy_wait_s if self.openai_wait_s is None else self.openai_wait_s

    def max_duration_for(self, queue: str) -> float:
        return self.max_duration_bulk_s if queue.startswith("bulk") else self.max_duration_s


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment; keyword overrides win (tests use them)."""
    return Settings(**overrides)
