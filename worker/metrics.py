"""The worker process's own Prometheus endpoint (``STT_WORKER_METRICS_PORT``, default 9808).

It runs in the process that loads the model and runs jobs (the prefork pool's child, or the
solo worker itself), because that is where the counters live. One worker per GPU on one host
means several exporters: a taken port is not an error, the next free one is used and logged,
so scrape ports 9808, 9809, ... (or set a distinct port per worker).
"""

from __future__ import annotations

import errno
import logging
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from shared.settings import Settings

log = logging.getLogger(__name__)


def start_exporter(settings: Settings) -> tuple[WSGIServer, int] | None:
    """Serve /metrics on the first free port from the configured one; None when off or full."""
    first = settings.worker_metrics_port
    if first <= 0:
        return None
    host = settings.worker_metrics_host
    for port in range(first, first + max(1, settings.worker_metrics_port_tries)):
        try:
            server, _thread = start_http_server(port, addr=host)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                log.warning("worker metrics not served on %s:%d: %s", host, port, exc)
                return None
            continue
        log.info("worker metrics on http://%s:%d/metrics", host, port)
        return server, port
    last = first + settings.worker_metrics_port_tries - 1
    log.warning("worker metrics not served: ports %d-%d on %s are all taken", first, last, host)
    return None
