"""Signed webhooks: real receivers on 127.0.0.1, a real worker process, SQLite+filesystem broker
and PostgreSQL+Redis. Events are made by transcription (completed, failed) or by canceling a
queued bulk job (the worker here consumes only `interactive`, so bulk jobs wait to be canceled).
Short retry schedules come from STT_WEBHOOK_* settings, as an operator would set them."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import numpy as np
import pytest
import redis
from sqlalchemy import select

from shared.delivery.attempts import claim_due, claim_for_sending, record_outcome
from shared.delivery.dispatch import delivery_queue
from shared.delivery.schedule import AttemptResult, decide, parse_retry_after, retry_delay
from shared.delivery.url_policy import UrlPolicy, check_url, safe_session
from shared.errors import SttError
from shared.settings import load_settings
from shared.store.sessions import make_engine, make_session_factory, session_scope
from shared.store.tables import DeliveryState, Job, WebhookDelivery, utcnow
from shared.webhook_signing import VerificationError, generate_secret, sign, verify
from tests.audio_factory import tone, write_audio
from tests.conftest import (
    BACKENDS,
    ROOT,
    Stack,
    _drop_postgres_database,
    _postgres_database,
    default_signals,
    make_stack,
    stop_worker,
    wait_for_worker,
)
from tests.webhook_receivers import Receiver, Reply

NEW_SECRET, OLD_SECRET = generate_secret(), generate_secret()
REDIS_WEBHOOKS = "redis://127.0.0.1:6379/14"  # 11: conftest, 12: realspeech, 13: metrics
SCHEDULE = [0.5, 0.5, 1.0, 1.0, 1.5]
WEBHOOK_ENV = {
    "STT_WEBHOOK_SECRETS": f"{NEW_SECRET},{OLD_SECRET}",
    "STT_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1/32",
    "STT_WEBHOOK_RETRY_SCHEDULE_S": ",".join(map(str, SCHEDULE)),
    "STT_WEBHOOK_RETRY_JITTER": "0.1",
    "STT_WEBHOOK_CONNECT_TIMEOUT_S": "1",
    "STT_WEBHOOK_READ_TIMEOUT_S": "1",
    "STT_WEBHOOK_SWEEP_INTERVAL_S": "0.2",
    "STT_WEBHOOK_LEASE_S": "5",
}


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def wh_stack(request, tmp_path_factory, tiny_model_dir) -> Iterator[Stack]:
    """Its own database and broker: no other test's worker may deliver or consume here."""
    backend = request.param
    extra = dict(WEBHOOK_ENV)
    if backend == "postgres":
        extra["db"] = _postgres_database()
        extra["STT_BROKER_URL"] = REDIS_WEBHOOKS
        redis.Redis.from_url(REDIS_WEBHOOKS).flushdb()
    root = tmp_path_factory.mktemp(f"webhooks-{backend}")
    yield make_stack(backend, root, tiny_model_dir, **extra)
    if backend == "postgres":
        _drop_postgres_database(extra["db"])


class WorkerHandle:
    """One worker subprocess (interactive queue only) that a test may stop and start again."""

    def __init__(self, stack: Stack, log_path: Path) -> None:
        self.stack, self.log_path = stack, log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [
            sys.executable, "-m", "celery", "-A", "worker.app", "worker", "--pool", "prefork",
            "--concurrency", "1", "--queues", "interactive", "--loglevel", "INFO",
            "--hostname", f"wh-{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle",
        ]
        env = {**os.environ, **self.stack.env, "PYTHONUNBUFFERED": "1"}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=default_signals
        )
        wait_for_worker(self.stack, self.proc, self.log_path)

    def stop(self) -> None:
        if self.proc is not None:
            stop_worker(self.proc)


@pytest.fixture(scope="module")
def wh_worker(wh_stack, tmp_path_factory) -> Iterator[WorkerHandle]:
    handle = WorkerHandle(wh_stack, tmp_path_factory.mktemp("wh-log") / "worker.log")
    handle.start()
    yield handle
    handle.stop()


@pytest.fixture()
def api(wh_stack):
    from api.app import create_app

    app = create_app(wh_stack.settings)
    app.config["TESTING"] = True
    return app.test_client()


@pytest.fixture()
def receiver() -> Iterator[Callable[..., Receiver]]:
    """A factory of started receivers, all stopped after the test."""
    made: list[Receiver] = []

    def make(script: list[Reply] | None = None) -> Receiver:
        made.append(Receiver(script).start())
        return made[-1]

    yield make
    for r in made:
        r.stop()


# --- helpers ------------------------------------------------------------------------------------


def _submit(api, tmp_path: Path, samples: np.ndarray | None = None, **fields) -> dict:
    path = write_audio(tmp_path / f"{uuid.uuid4().hex}.wav", tone(1.0) if samples is None
                       else samples, 16000, "wav")
    with path.open("rb") as handle:
        response = api.post("/v1/jobs", data={"file": (handle, path.name), **fields},
                            content_type="multipart/form-data")
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def canceled_event(api, tmp_path: Path, url: str, **fields) -> str:
    """A bulk job (not consumed here) canceled at once: its `canceled` event is due now."""
    job = _submit(api, tmp_path, queue="bulk", callback_url=url, **fields)
    assert api.delete(f"/v1/jobs/{job['id']}").get_json()["status"] == "canceled"
    return job["id"]


def attempts(api, job_id: str) -> list[dict]:
    response = api.get(f"/v1/jobs/{job_id}/deliveries")
    assert response.status_code == 200
    return response.get_json()["deliveries"]


def settled(rows: list[dict]) -> bool:
    return bool(rows) and rows[-1]["state"] in ("succeeded", "gave_up")


def wait_attempts(
    api, job_id: str, done: Callable[[list[dict]], bool] = settled, timeout: float = 30
) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = attempts(api, job_id)
        if done(rows):
            return rows
        time.sleep(0.1)
    raise AssertionError(f"deliveries of {job_id} never settled: {rows}")


def _error(response) -> str:
    return response.get_json()["error"]["code"]


# --- end to end through a worker ----------------------------------------------------------------


def test_completed_job_gets_full_signed_payload(wh_worker, api, receiver, vi_clip, wh_stack):
    hook = receiver()
    with vi_clip.open("rb") as handle:
        job = api.post("/v1/jobs", data={"file": (handle, "clip.wav"), "callback_url": hook.url,
                                         "metadata": '{"ticket": 7}'},
                       content_type="multipart/form-data").get_json()
    [got] = hook.wait_for(1, timeout=60)
    # The helper verifies with the rotation list; the new secret signs, the old one alone fails.
    event = verify(got.headers, got.body, [OLD_SECRET, NEW_SECRET])
    with pytest.raises(VerificationError):
        verify(got.headers, got.body, OLD_SECRET)
    finished = api.get(f"/v1/jobs/{job['id']}").get_json()
    assert got.webhook_id == f"msg_{job['id']}_completed"
    assert got.headers["content-type"].startswith("application/json")
    assert event["type"] == "job.completed" and event["timestamp"] == finished["finished_at"]
    data = event["data"]
    assert data["id"] == job["id"] and data["status"] == "completed" and data["error"] is None
    assert data["transcript"] == finished["transcript"] and data["metadata"] == {"ticket": 7}
    assert data["links"]["self"].endswith(f"/v1/jobs/{job['id']}")
    assert data["links"]["transcript"].endswith(f"/v1/jobs/{job['id']}/transcript")
    [row] = wait_attempts(api, job["id"])
    assert row["state"] == "succeeded" and row["status_code"] == 200 and row["attempt"] == 1
    assert row["event_id"] == got.webhook_id and row["latency_ms"] > 0


def test_failed_job_with_thin_payload(wh_worker, api, receiver, tmp_path):
    hook = receiver()
    silent = np.zeros(32000, np.float32)
    job = _submit(api, tmp_path, silent, callback_url=hook.url, callback_payload="thin")
    [got] = hook.wait_for(1, timeout=60)
    event = verify(got.headers, got.body, NEW_SECRET)
    assert event["type"] == "job.failed" and got.webhook_id == f"msg_{job['id']}_failed"
    assert event["data"]["error"]["code"] == "silent_audio"
    assert "transcript" not in event["data"] and event["data"]["links"]["transcript"] is None


def test_receiver_error_then_success_keeps_the_webhook_id(wh_worker, api, receiver, tmp_path):
    hook = receiver([Reply(500)])
    job_id = canceled_event(api, tmp_path, hook.url)
    first, second = hook.wait_for(2)
    assert first.webhook_id == second.webhook_id == f"msg_{job_id}_canceled"
    for got in (first, second):
        assert verify(got.headers, got.body, NEW_SECRET)["data"]["status"] == "canceled"
    rows = wait_attempts(api, job_id)
    assert [(r["attempt"], r["state"], r["status_code"]) for r in rows] == [
        (1, "failed", 500), (2, "succeeded", 200),
    ]
    assert _ts(rows[0]["next_attempt_at"]) <= _ts(rows[1]["attempted_at"])  # not before due
    assert rows[1]["next_attempt_at"] is None


def test_slow_receiver_times_out_and_is_retried(wh_worker, api, receiver, tmp_path):
    hook = receiver([Reply(200, delay_s=2.5)])  # past STT_WEBHOOK_READ_TIMEOUT_S=1
    job_id = canceled_event(api, tmp_path, hook.url)
    rows = wait_attempts(api, job_id)
    assert [r["state"] for r in rows] == ["failed", "succeeded"]
    assert rows[0]["status_code"] is None and "timeout" in rows[0]["error"].lower()
    assert len(hook.received) == 2


def test_410_stops_for_good(wh_worker, api, receiver, tmp_path):
    hook = receiver([Reply(410)])
    job_id = canceled_event(api, tmp_path, hook.url)
    [row] = wait_attempts(api, job_id)
    assert row["state"] == "gave_up" and row["status_code"] == 410
    assert row["next_attempt_at"] is None
    time.sleep(1.0)  # a retry would be a pending row already; nothing else may send either
    assert len(hook.received) == 1 and len(attempts(api, job_id)) == 1


def test_429_retry_after_is_honoured(wh_worker, api, receiver, tmp_path):
    hook = receiver([Reply(429, {"Retry-After": "2"})])  # the schedule alone would say 0.5 s
    job_id = canceled_event(api, tmp_path, hook.url)
    first, second = hook.wait_for(2)
    assert second.at - first.at >= 1.9
    rows = wait_attempts(api, job_id)
    waited = _ts(rows[0]["next_attempt_at"]) - _ts(rows[0]["attempted_at"])
    assert rows[0]["status_code"] == 429 and 1.9 <= waited.total_seconds() <= 3.5
    assert rows[1]["state"] == "succeeded"


def test_redirects_are_not_followed(wh_worker, api, receiver, tmp_path):
    elsewhere = receiver()
    hook = receiver([Reply(302, {"Location": elsewhere.url})])
    job_id = canceled_event(api, tmp_path, hook.url)
    rows = wait_attempts(api, job_id)
    assert [(r["state"], r["status_code"]) for r in rows] == [("failed", 302), ("succeeded", 200)]
    assert elsewhere.received == []


def test_receiver_down_for_a_while_then_up_gets_the_event_once(
    wh_worker, api, receiver, tmp_path
):
    hook = receiver()
    hook.stop()  # the port is known and now refuses connections
    job_id = canceled_event(api, tmp_path, hook.url)
    wait_attempts(api, job_id, lambda rows: sum(r["state"] == "failed" for r in rows) >= 2)
    hook.start()
    [got] = hook.wait_for(1)
    rows = wait_attempts(api, job_id)
    assert rows[-1]["state"] == "succeeded" and all(r["state"] == "failed" for r in rows[:-1])
    assert all(r["status_code"] is None and r["error"] for r in rows[:-1])
    assert len({r["event_id"] for r in rows}) == 1 == len(hook.successes())
    assert got.webhook_id == rows[0]["event_id"]


def test_redeliver_on_request(wh_worker, api, receiver, tmp_path):
    hook = receiver()
    job_id = canceled_event(api, tmp_path, hook.url)
    wait_attempts(api, job_id)
    response = api.post(f"/v1/jobs/{job_id}/deliveries")
    assert response.status_code == 202
    assert response.get_json()["delivery"]["attempt"] == 2
    first, second = hook.wait_for(2)
    assert first.webhook_id == second.webhook_id
    rows = wait_attempts(api, job_id, lambda rows: len(rows) == 2 and settled(rows))
    assert [r["state"] for r in rows] == ["succeeded", "succeeded"]


@pytest.mark.slow
def test_worker_restarted_between_attempts_loses_nothing(wh_worker, api, receiver, tmp_path):
    if wh_worker.stack.backend != "postgres":
        pytest.skip("one restart is enough (~15 s): PostgreSQL+Redis, the production pairing")
    hook = receiver([Reply(503, {"Retry-After": "4"})])
    job_id = canceled_event(api, tmp_path, hook.url)
    hook.wait_for(1)
    wait_attempts(api, job_id, lambda rows: len(rows) == 2)
    wh_worker.stop()
    rows = attempts(api, job_id)
    assert len(hook.received) == 1 and rows[-1]["state"] == "pending"  # due after the restart
    wh_worker.start()
    first, second = hook.wait_for(2, timeout=30)
    rows = wait_attempts(api, job_id)
    assert first.webhook_id == second.webhook_id == rows[0]["event_id"]
    time.sleep(1.0)
    assert len(hook.received) == 2 and len(hook.successes()) == 1
    assert [r["state"] for r in attempts(api, job_id)] == ["failed", "succeeded"]


def test_url_is_checked_again_before_each_delivery(wh_worker, api, wh_stack):
    """A URL refused now (allow-list changed, DNS moved) gives up without a request being made."""
    [delivery_id] = _pending_rows(wh_stack.settings, 1, utcnow(), url="http://10.0.0.1:9/x")
    sessions = make_session_factory(make_engine(wh_stack.settings.database_url))
    with sessions() as session:
        job_id = str(session.get_one(WebhookDelivery, delivery_id).job_id)
    [row] = wait_attempts(api, job_id)
    assert row["state"] == "gave_up" and row["status_code"] is None
    assert "callback_url not allowed" in row["error"] and "private" in row["error"]


# --- the API at the door ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:10.0.0.1]/x", "http://192.168.0.10:8080/x"],
)
def test_submission_refuses_private_callback_urls(api, tmp_path, url):
    path = write_audio(tmp_path / "a.wav", tone(1.0), 16000, "wav")
    with path.open("rb") as handle:
        response = api.post("/v1/jobs", data={"file": (handle, "a.wav"), "callback_url": url},
                            content_type="multipart/form-data")
    assert response.status_code == 400 and _error(response) == "callback_url_not_allowed"


def test_localhost_needs_the_allow_list(wh_stack, tmp_path):
    from api.app import create_app

    def submit(settings) -> object:
        client = create_app(settings).test_client()
        path = write_audio(tmp_path / "a.wav", tone(1.0), 16000, "wav")
        with path.open("rb") as handle:
            return client.post("/v1/jobs", data={"file": (handle, "a.wav"), "queue": "bulk",
                                                 "callback_url": "http://localhost:9/hook"},
                               content_type="multipart/form-data")

    strict = wh_stack.settings.model_copy(update={"webhook_allowed_hosts": []})
    refused = submit(strict)
    assert refused.status_code == 400 and _error(refused) == "callback_url_not_allowed"
    opened = wh_stack.settings.model_copy(update={"webhook_allowed_hosts": ["localhost"]})
    assert submit(opened).status_code == 202


def test_no_secret_means_no_callbacks(wh_stack, tmp_path):
    from api.app import create_app

    client = create_app(wh_stack.settings.model_copy(update={"webhook_secrets": []})).test_client()
    path = write_audio(tmp_path / "a.wav", tone(1.0), 16000, "wav")
    with path.open("rb") as handle:
        response = client.post("/v1/jobs", data={"file": (handle, "a.wav"),
                                                 "callback_url": "https://example.com/hook"},
                               content_type="multipart/form-data")
    assert response.status_code == 400 and _error(response) == "webhooks_disabled"


def test_canceled_event_commits_with_the_cancel(api, tmp_path, monkeypatch):
    """The API dying between the cancel and the send loses nothing: the event row committed
    with the status, so the sweeper sends it."""
    def die(*_args: object) -> None:
        raise RuntimeError("the API process died after the cancel committed")

    monkeypatch.setattr("api.jobs.notify_terminal", die)
    job = _submit(api, tmp_path, queue="bulk", callback_url="http://127.0.0.1:9/x")
    assert api.delete(f"/v1/jobs/{job['id']}").status_code == 500
    assert api.get(f"/v1/jobs/{job['id']}").get_json()["status"] == "canceled"
    rows = attempts(api, job["id"])
    assert [(r["event_type"], r["attempt"], r["state"]) for r in rows] == [
        ("canceled", 1, "pending")
    ]


def test_deliveries_routes_refuse_what_they_cannot_do(api, tmp_path):
    assert api.get(f"/v1/jobs/{uuid.uuid4()}/deliveries").status_code == 404
    queued = _submit(api, tmp_path, queue="bulk", callback_url="http://127.0.0.1:9/x")
    response = api.post(f"/v1/jobs/{queued['id']}/deliveries")
    assert response.status_code == 409 and _error(response) == "job_not_finished"
    plain = _submit(api, tmp_path, queue="bulk")
    api.delete(f"/v1/jobs/{plain['id']}")
    response = api.post(f"/v1/jobs/{plain['id']}/deliveries")
    assert response.status_code == 409 and _error(response) == "no_callback_url"
    assert attempts(api, plain["id"]) == []  # no callback_url: no event recorded on cancel
    bad = api.post("/v1/jobs", data={"audio_path": "/nope", "callback_payload": "fat"})
    assert bad.status_code == 400 and _error(bad) == "invalid_request"


# --- database claims: several workers never send one attempt twice -------------------------------


def _pending_rows(settings, count: int, due: datetime, url: str = "http://e/") -> list[int]:
    sessions = make_session_factory(make_engine(settings.database_url))
    with session_scope(sessions) as session:
        job = Job(source="path", input_path="/x", status="canceled", callback_url=url)
        session.add(job)
        session.flush()
        rows = [
            WebhookDelivery(event_id=f"msg_t_{uuid.uuid4().hex}", job_id=job.id,
                            event_type="canceled", attempt=1, state="pending",
                            next_attempt_at=due)
            for _ in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [r.id for r in rows]


def test_concurrent_sweepers_claim_each_due_row_once(wh_stack):
    # Due "tomorrow": the running worker's sweeper (real clock) leaves these rows alone.
    later = utcnow() + timedelta(days=1)
    ids = set(_pending_rows(wh_stack.settings, 20, later))
    sessions = make_session_factory(make_engine(wh_stack.settings.database_url))
    claimed: list[list[int]] = []

    def sweep() -> None:
        with session_scope(sessions) as session:
            claimed.append(claim_due(session, later + timedelta(seconds=1), lease_s=60))

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    mine = [i for batch in claimed for i in batch if i in ids]
    assert sorted(mine) == sorted(ids)  # every row once, none twice


def test_one_sender_per_attempt_and_one_recorded_outcome(wh_stack):
    settings = wh_stack.settings
    later = utcnow() + timedelta(days=1)
    [delivery_id] = _pending_rows(settings, 1, later)
    sessions = make_session_factory(make_engine(settings.database_url))
    with session_scope(sessions) as session:
        claim = claim_for_sending(session, delivery_id, later, settings)
    with session_scope(sessions) as session:
        assert claim_for_sending(session, delivery_id, later, settings) is None
    result = AttemptResult(later, status_code=500)
    outcome = decide(claim.attempt, result, settings, later)
    stolen = dataclasses.replace(claim, token="not-ours")
    with session_scope(sessions) as session:
        assert not record_outcome(session, stolen, result, outcome)
    with session_scope(sessions) as session:
        assert record_outcome(session, claim, result, outcome)
    with session_scope(sessions) as session:
        assert not record_outcome(session, claim, result, outcome)  # recorded once only
        rows = session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.event_id == claim.event_id)
            .order_by(WebhookDelivery.attempt)
        ).all()
    assert [(r.attempt, r.state) for r in rows] == [(1, "failed"), (2, "pending")]
    assert rows[1].next_attempt_at == rows[0].next_attempt_at > later


def test_migration_goes_down_and_up(wh_stack, tmp_path):
    from alembic import command

    from shared.store.migrations import alembic_config, upgrade

    if wh_stack.backend == "postgres":
        name = _postgres_database()
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    else:
        name, url = None, f"sqlite:///{tmp_path / 'mig.sqlite3'}"
    try:
        upgrade(url)
        command.downgrade(alembic_config(url), "0001")
        upgrade(url)
        engine = make_engine(url)
        with engine.connect() as conn:
            assert conn.execute(select(WebhookDelivery.id)).all() == []
        engine.dispose()
    finally:
        if name:
            _drop_postgres_database(name)


# --- units: signing, SSRF rules, schedule ------------------------------------------------------


def test_signature_matches_the_standard_webhooks_test_vector():
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, secret) == expected
    headers = {"Webhook-Id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "Webhook-Timestamp": "1614265330",
               "Webhook-Signature": f"v1,bm90IGl0 {expected}"}  # several entries: any may match
    assert verify(headers, body, secret, now=1614265330 + 299) == {"test": 2432232314}
    for bad_body, now in ((body + b" ", 1614265330), (body, 1614265330 + 301)):
        with pytest.raises(VerificationError):
            verify(headers, bad_body, secret, now=now)
    with pytest.raises(VerificationError):
        verify({"webhook-id": "x"}, body, secret)


def test_settings_refuse_malformed_secrets():
    with pytest.raises(ValueError, match="whsec_"):
        load_settings(webhook_secrets="not-a-secret")
    with pytest.raises(ValueError):
        load_settings(webhook_secrets="whsec_@@@")
    assert load_settings(webhook_secrets=f" {NEW_SECRET} ,").webhook_secrets == [NEW_SECRET]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://10.0.0.1/", False), ("http://169.254.169.254/", False),
        ("http://127.0.0.1:8080/", False), ("http://[::1]/", False), ("http://localhost/", False),
        ("http://[::ffff:192.168.1.1]/", False), ("http://224.0.0.1/", False),
        ("http://100.64.0.1/", False), ("http://0.0.0.0/", False), ("http://[fe80::1]/", False),
        ("http://0x7f000001/", False), ("http://2130706433/", False),
        ("http://8.8.8.8/hook", True), ("https://[2001:4860:4860::8888]/", True),
    ],
)
def test_url_policy_refuses_non_public_addresses(url, allowed):
    if allowed:
        check_url(url, UrlPolicy())
    else:
        with pytest.raises(SttError) as caught:
            check_url(url, UrlPolicy())
        assert caught.value.code == "callback_url_not_allowed"


def test_allow_list_takes_cidrs_and_host_names():
    policy = UrlPolicy.from_entries(["127.0.0.0/8", "Internal.Example."])
    check_url("http://127.0.0.1:9/", policy)
    check_url("http://internal.example/hook", policy)  # named hosts are not even resolved
    with pytest.raises(SttError):
        check_url("http://10.1.2.3/", policy)


def test_connect_time_check_catches_what_resolution_did_not(receiver):
    """The peer address is checked on the socket itself (DNS rebinding), before a byte is sent."""
    hook = receiver()
    with pytest.raises(SttError) as caught, safe_session(UrlPolicy()) as session:
        session.post(hook.url, data=b"{}", timeout=(1, 1), allow_redirects=False)
    assert caught.value.code == "callback_url_not_allowed" and hook.received == []
    with safe_session(UrlPolicy.from_entries(["127.0.0.1/32"])) as session:
        assert session.post(hook.url, data=b"{}", timeout=(1, 1)).status_code == 200


def test_schedule_backoff_jitter_and_give_up():
    settings = load_settings(webhook_retry_schedule_s="5,300", webhook_retry_jitter="0.2",
                             webhook_max_retry_after_s="60")
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def outcome(attempt: int, code: int | None, retry_after: str | None = None, rand=0.5):
        result = AttemptResult(now, status_code=code, retry_after=retry_after, error="x")
        return decide(attempt, result, settings, now, rand=lambda: rand)

    assert outcome(1, 204).state == DeliveryState.SUCCEEDED
    assert outcome(1, 410).state == DeliveryState.GAVE_UP
    assert outcome(1, 500).next_attempt_at == now + timedelta(seconds=5)
    assert outcome(2, 500, rand=1.0).next_attempt_at == now + timedelta(seconds=360)
    assert outcome(2, 500, rand=0.0).next_attempt_at == now + timedelta(seconds=240)
    assert outcome(3, 500).state == DeliveryState.GAVE_UP  # schedule exhausted
    assert outcome(1, 301).state == DeliveryState.FAILED  # only 2xx is success
    assert outcome(1, 429, "30").next_attempt_at == now + timedelta(seconds=30)
    assert outcome(1, 503, "9999").next_attempt_at == now + timedelta(seconds=60)  # capped
    assert outcome(1, 500, "30").next_attempt_at == now + timedelta(seconds=5)  # 429/503 only
    assert outcome(1, None).state == DeliveryState.FAILED  # no answer at all: retry
    assert retry_delay(0, [1.0], 0.0) is None


def test_retry_after_parsing():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None


def test_events_stay_with_workers_of_the_jobs_model():
    assert delivery_queue("interactive") == delivery_queue("bulk") == "interactive"
    assert delivery_queue("bulk.whisper") == "interactive.whisper"


def _ts(raw: str) -> datetime:
    return datetime.fromisoformat(raw)
