"""The embedded broker hands a consumer whole messages while a producer is still writing."""

from __future__ import annotations

import threading
from pathlib import Path
from queue import Empty

from kombu import Connection
from kombu.transport.virtual import Channel as VirtualChannel

from shared.jobs.fs_broker import TRANSPORT

MESSAGES = 400


def _channel(folder: Path) -> VirtualChannel:
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder)}
    connection = Connection("filesystem://", transport=TRANSPORT, transport_options=options)
    return connection.default_channel


def test_a_reader_racing_the_writer_gets_every_message_whole(tmp_path):
    """kombu's own writer creates the file before writing it; a reader listing the folder in
    between read an empty message and the worker died of the JSON error."""
    writer, reader = _channel(tmp_path), _channel(tmp_path)
    got: list[object] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        while len(got) < MESSAGES and not errors:
            try:
                got.append(reader._get("q"))
            except Empty:
                continue
            except Exception as exc:  # noqa: BLE001 - the failure under test, reported below
                errors.append(exc)
        done.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    payload = {"body": "x" * 20_000}
    for index in range(MESSAGES):
        writer._put("q", {**payload, "index": index})
    assert done.wait(30), f"only {len(got)} of {MESSAGES} arrived"
    assert not errors, errors[0]
    assert sorted(m["index"] for m in got) == list(range(MESSAGES))  # type: ignore[index]
    assert all(m["body"] == payload["body"] for m in got)  # type: ignore[index]
    assert not list(tmp_path.iterdir())  # nothing left behind, no partial file
