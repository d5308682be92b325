"""Search over finished transcripts: one row per segment, found by words with or without
Vietnamese diacritics.

``folding`` turns text into the words both sides compare (lowercase, and folded: no tone marks,
đ as d); ``query`` reads what a user typed into literal words and phrases, never into the
engine's own syntax; ``index`` writes a completed job's segments (in the transaction that
records its result); ``sqlite`` and ``postgres`` hold the SQL of each engine (FTS5, and
tsvector with GIN); ``finder`` runs a search with its filters and cursor, and ``highlight``
marks the words found. It builds on ``shared.store`` only: the worker calls ``index`` when a
job completes, and deleting a job removes its rows by the foreign key's cascade, so
``shared.jobs`` needs nothing from here.
"""
