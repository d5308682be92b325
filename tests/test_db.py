"""Engine construction: a PostgreSQL server that accepts the connection and then says nothing
(a hung server, or a firewall that half-answers) must fail the ping promptly, not after the
OS's TCP timeouts, or /readyz and the worker's database retries hang with it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import OperationalError

from shared.store.sessions import make_engine, ping


@pytest.fixture()
def silent_server() -> Iterator[int]:
    """A TCP port whose kernel completes the handshake but whose server never speaks."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def _ping_error(url: str, bound_s: float) -> tuple[BaseException | None, float]:
    """Ping in a daemon thread, so a regression (a hang) fails the test instead of the run."""
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            ping(make_engine(url))
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test to assert on
            outcome.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(bound_s)
    assert outcome, f"the ping still hangs after {bound_s} s"
    return outcome[0], time.monotonic() - started


def test_postgres_connect_gives_up_after_its_timeout(silent_server: int) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{silent_server}/test"
    error, elapsed = _ping_error(url, bound_s=20)
    assert isinstance(error, OperationalError) and 4 < elapsed < 20  # the 5 s default


def test_a_connect_timeout_in_the_url_wins(silent_server: int) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{silent_server}/test?connect_timeout=2"
    error, elapsed = _ping_error(url, bound_s=20)
    assert isinstance(error, OperationalError) and elapsed < 4.5
