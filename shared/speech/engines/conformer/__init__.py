"""The streaming Conformer CTC family (the offline default), run by our own code in ONNX Runtime.

``engine.py`` is the Engine; around it: ``units.py`` (its BPE unit list), ``features.py``
(its log-mel bank), ``streams.py`` (the cached chunk loop over batched streams),
``shared_streams.py`` (one batch shared by concurrent calls), ``session.py`` with
``rewrite.py`` and ``quantize.py`` (the ONNX Runtime session and the graph rewrites) and
``tuning.py`` (the optimisation level, timed at first start). Nothing here imports another
engine family. The package imports nothing itself, so importing one module stays cheap.
"""
