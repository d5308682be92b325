"""The store: the database tables, sessions, schema migrations and retried writes.

It owns what is kept, not the rules for changing it: the SQLAlchemy models (``tables``), engines
and units of work (``sessions``), applying the Alembic migrations (``migrations``) and retrying a
write while the database is away (``retries``). It may import only ``shared.settings`` and
``shared.errors``: jobs, delivery and backfill build on it, never the other way round.
"""
