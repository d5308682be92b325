"""Jobs: the rules for creating and changing jobs, and the queue that carries them to workers.

It owns job records (creation with idempotency keys, lookup, listing, cancel and delete), the
terminal events written with a status change, which paths a job may read, named models and
their queues, back-pressure, the Celery configuration both sides share and the embedded
filesystem broker. It may import ``shared.store``, ``shared.settings`` and ``shared.errors``;
it knows nothing of how events are delivered (``shared.delivery`` builds on it, not the reverse).
"""
