"""The wav2vec2 CTC family (transformers), each half placed on the path measured fastest.

``engine.py`` is the Engine; ``stages.py`` runs its conv front end and its transformer as
separately placed halves, ``onnx_export.py`` writes their ONNX exports (fp32 and int8) and
``tuning.py`` times each half's paths at first start. Nothing here imports another engine
family.
"""
