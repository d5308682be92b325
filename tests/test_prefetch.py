"""The pipeline's read-ahead of chunks: order kept, errors raised where they happened, and a
consumer that stops early stops the producer too."""

from __future__ import annotations

import threading
import time

import pytest

from shared.speech.prefetch import prefetch


def test_items_come_in_order_from_another_thread():
    threads: set[str] = set()

    def items():
        for i in range(50):
            threads.add(threading.current_thread().name)
            yield i

    assert list(prefetch(items(), depth=3)) == list(range(50))
    assert threads == {"stt-prefetch"}


def test_an_error_in_the_producer_is_raised_at_its_item():
    def items():
        yield 1
        yield 2
        raise ValueError("bad chunk")

    got = []
    with pytest.raises(ValueError, match="bad chunk"):
        for item in prefetch(items()):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_stops_the_producer():
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    stream = prefetch(items(), depth=2)
    assert next(stream) == 0
    stream.close()
    time.sleep(0.5)
    assert len(produced) <= 5
    assert not any(t.name == "stt-prefetch" for t in threading.enumerate())
