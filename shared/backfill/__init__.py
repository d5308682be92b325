"""Backfill: many server paths at once, one ``bulk`` job per distinct content.

It owns the items and their tally, discovery of files, the submitter (content keys, recovery
of unsent jobs, retries of failed ones), batch rows, and the resumable command-line run with
its progress. It builds on ``shared.jobs`` (records and the queue), ``shared.delivery`` (the
callback URL rule), ``shared.store``, ``shared.apikeys`` and, to recognise audio by content,
``shared.speech``; nothing else in ``shared`` imports it.
"""
