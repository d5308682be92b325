"""The embedded development broker: kombu's filesystem transport, with messages that appear whole.

kombu's own ``_put`` creates the message file under its final name and only then writes it,
while ``_get`` lists the folder, moves a matching file away and reads it without a lock. A
consumer that lists the folder between those two steps reads an empty message, and the JSON
error it raises stops the whole worker (Celery calls it unrecoverable). Here a message is
written under a name the consumer skips and renamed into place, which is atomic on one
filesystem, so a consumer sees a message whole or not at all.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

# Celery's ``broker_transport`` for ``filesystem://`` URLs (see ``shared.jobs.queue``).
TRANSPORT = "shared.jobs.fs_broker:Transport"


class Channel(filesystem.Channel):
    def _put(  # type: ignore[override]  # kombu-stubs: the base names it message, its parent payload
        self, queue: str, payload: Any, **kwargs: Any
    ) -> None:
        # The same name as kombu's (its time prefix keeps the order); ".part" hides it until
        # the rename, since the consumer takes only names ending in ".<queue>.msg".
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".part"
        try:
            with open(partial, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
