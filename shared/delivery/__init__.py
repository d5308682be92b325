"""Delivery: webhooks for finished jobs, from a recorded event to a signed HTTP POST.

It owns the delivery attempts' state machine, the retry schedule, the event body, enqueueing
the delivery task and the URL policy that keeps callbacks off private networks. The events
themselves are written by ``shared.jobs.events`` with the status change; this package reads
them. It may import ``shared.jobs``, ``shared.store``, ``shared.settings``, ``shared.errors``
and the standalone ``shared.webhook_signing``; nothing in ``shared`` but backfill imports it.
"""
