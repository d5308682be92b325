"""Prometheus metrics: what workers count as jobs run, and what the API reads at scrape time.

Two sources, because API and workers run as separate processes (often on separate machines):

* Worker-side instruments (counters, histograms, gauges on the default registry) are updated by
  the process that ran the job and exported by its own HTTP endpoint (``worker/metrics.py``).
  Any worker-side module may call them, e.g. ``WEBHOOK_DELIVERIES.labels(outcome="ok").inc()``.
* :class:`JobStoreCollector` is read by the API's ``/metrics`` at scrape time: jobs by status
  and their audio seconds from the database, queue depth from the broker. Those figures are the
  service's truth however many workers there are, so they are computed, never counted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from shared.jobs.routing import BASE_QUEUES, offered_models, queue_for
from shared.settings import Settings
from shared.store.tables import Job, JobStatus

log = logging.getLogger(__name__)

_SECONDS = (0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600)
_RTF = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5)
#: kombu's Redis transport keeps a list per priority step; priority 0 is the bare queue name.
_REDIS_PRIORITY_SEP = "\x06\x16"
_REDIS_PRIORITY_STEPS = (0, 3, 6, 9)

# --- worker-side instruments ------------------------------------------------------------------
JOBS_FINISHED = Counter(
    "stt_worker_jobs_finished", "Jobs this worker process finished, by outcome.", ["status"]
)
JOB_LATENCY = Histogram(
    "stt_job_latency_seconds",
    "From submission to the recorded outcome (queue wait + processing).",
    ["queue"],
    buckets=_SECONDS,
)
JOB_PROCESSING = Histogram(
    "stt_job_processing_seconds",
    "Time the pipeline spent on a completed job (decode, detect speech, transcribe).",
    ["queue"],
    buckets=_SECONDS,
)
AUDIO_SECONDS = Counter(
    "stt_audio_seconds_processed", "Seconds of audio in completed jobs.", ["queue"]
)
REAL_TIME_FACTOR = Histogram(
    "stt_real_time_factor",
    "Processing time divided by audio duration, per completed job (below 1 = faster than "
    "real time).",
    buckets=_RTF,
)
JOB_FAILURES = Counter(
    "stt_job_failures", "Jobs that failed, by error code (undecodable_audio, ...).", ["code"]
)
MODEL_LOAD_SECONDS = Gauge(
    "stt_model_load_seconds",
    "How long this worker process took to load its model.",
    ["engine", "model", "device"],
)
#: Called by webhook delivery code: ``WEBHOOK_DELIVERIES.labels(outcome="delivered").inc()``.
WEBHOOK_DELIVERIES = Counter(
    "stt_webhook_deliveries",
    "Webhook delivery attempts by outcome (delivered, retry, failed, ...).",
    ["outcome"],
)


def observe_finished(job: Job) -> None:
    """Count a job whose outcome this process just recorded (called once per job).

    Called inside the transaction that records the outcome, so it must never raise.
    """
    try:
        _observe(job)
    except Exception as exc:  # noqa: BLE001 - a metric is never worth a lost result
        log.warning("metrics: cannot record job %s: %s", job.id, exc)


def _observe(job: Job) -> None:
    JOBS_FINISHED.labels(status=job.status).inc()
    if job.created_at and job.finished_at:
        latency = (job.finished_at - job.created_at).total_seconds()
        JOB_LATENCY.labels(queue=job.queue).observe(max(latency, 0.0))
    if job.status != JobStatus.COMPLETED:
        JOB_FAILURES.labels(code=job.error_code or "unknown").inc()
        return
    processing, audio = job.processing_s or 0.0, job.duration_s or 0.0
    JOB_PROCESSING.labels(queue=job.queue).observe(processing)
    AUDIO_SECONDS.labels(queue=job.queue).inc(audio)
    if audio > 0:
        REAL_TIME_FACTOR.observe(processing / audio)


# --- API-side, computed at scrape time --------------------------------------------------------
class JobStoreCollector(Collector):
    """Jobs by status (and their audio seconds) from the database, queue depth from the broker.

    Registered on the API app's own registry. A failing source is reported through the
    ``stt_source_up`` gauge instead of failing the whole scrape.
    """

    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self.settings = settings
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "stt_source_up", "Whether /metrics could read a source (1) or not.", labels=["source"]
        )
        yield from self._jobs(up)
        yield from self._queues(up)
        yield up

    def _jobs(self, up: GaugeMetricFamily) -> Iterator[Metric]:
        try:
            rows = job_totals(self.sessions)
        except Exception as exc:  # noqa: BLE001 - a scrape must answer even without a database
            log.warning("metrics: cannot read jobs: %s", _brief(exc))
            up.add_metric(["database"], 0)
            return
        up.add_metric(["database"], 1)
        count = GaugeMetricFamily("stt_jobs", "Jobs in the database by status.", labels=["status"])
        audio = GaugeMetricFamily(
            "stt_jobs_audio_seconds",
            "Audio duration of jobs in the database by status (known once decoded).",
            labels=["status"],
        )
        for status in JobStatus:
            jobs, seconds = rows.get(status.value, (0, 0.0))
            count.add_metric([status.value], jobs)
            audio.add_metric([status.value], seconds)
        yield count
        yield audio

    def _queues(self, up: GaugeMetricFamily) -> Iterator[Metric]:
        try:
            depths = queue_depths(self.settings)
        except Exception as exc:  # noqa: BLE001
            log.warning("metrics: cannot read queue depth: %s", _brief(exc))
            up.add_metric(["broker"], 0)
            return
        if depths is None:
            return
        up.add_metric(["broker"], 1)
        depth = GaugeMetricFamily(
            "stt_queue_depth", "Messages waiting in the broker per queue.", labels=["queue"]
        )
        for queue, value in depths.items():
            depth.add_metric([queue], value)
        yield depth


def _brief(exc: Exception) -> str:
    """The first line only: a scrape every 15 s must not repeat a whole SQL statement."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def job_totals(sessions: sessionmaker[Session]) -> dict[str, tuple[int, float]]:
    """status -> (jobs, audio seconds), one grouped query."""
    query = select(Job.status, func.count(), func.coalesce(func.sum(Job.duration_s), 0.0))
    with sessions() as session:
        rows = session.execute(query.group_by(Job.status)).all()
    # ``seconds`` is never None (coalesce), though typed like the nullable column it sums
    return {status: (int(n), float(seconds or 0.0)) for status, n, seconds in rows}


def queue_names(settings: Settings) -> list[str]:
    """Every queue this deployment routes to: interactive and bulk, per offered model."""
    return [queue_for(base, name) for name in offered_models(settings) for base in BASE_QUEUES]


def queue_depths(settings: Settings) -> dict[str, int] | None:
    """Waiting messages per queue, or None for a broker we cannot count."""
    url = settings.broker_url
    if url.startswith(("redis://", "rediss://")):
        return _redis_depths(url, queue_names(settings))
    if url.startswith("filesystem"):
        return _folder_depths(settings.broker_folder / "queue", queue_names(settings))
    return None


def _redis_depths(url: str, queues: list[str]) -> dict[str, int]:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        with client.pipeline(transaction=False) as pipe:
            for queue in queues:
                for step in _REDIS_PRIORITY_STEPS:
                    pipe.llen(f"{queue}{_REDIS_PRIORITY_SEP}{step}" if step else queue)
            lengths = pipe.execute()
    finally:
        client.close()
    per_queue = len(_REDIS_PRIORITY_STEPS)
    return {q: sum(lengths[i * per_queue : (i + 1) * per_queue]) for i, q in enumerate(queues)}


def _folder_depths(folder: Path, queues: list[str]) -> dict[str, int]:
    """kombu's filesystem transport names each message ``<time>_<uuid>.<queue>.msg``."""
    depths = dict.fromkeys(queues, 0)
    if not folder.is_dir():
        return depths
    for entry in folder.iterdir():
        queue = entry.name.partition(".")[2].removesuffix(".msg")
        if queue in depths and entry.name.endswith(".msg"):
            depths[queue] += 1
    return depths
