"""The speech core: audio in, text with times out.

It owns decoding and normalising audio, speech detection and chunking, the engines (Conformer,
wav2vec2, Whisper) and the devices and precisions they run on, CTC decoding, text
normalisation, output formats and assembling the offline models from pinned wheels.

It may import only ``shared.settings``, ``shared.errors`` and ``shared.logs`` from the rest of
the project: it knows nothing of jobs, queues, HTTP or the database, so it can be driven from a
worker, a benchmark or a notebook alike.
"""
