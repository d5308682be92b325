"""The Whisper family on faster-whisper (CTranslate2): ``engine.py``.

Nothing here imports another engine family.
"""
