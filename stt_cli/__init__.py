"""The ``stt`` command: the composition root, where the API, the workers and ``shared`` meet.

It is the only code that imports ``api``, ``worker`` and ``shared`` together, which is why it
lives outside all three: ``shared`` never imports ``api`` or ``worker``, and the two sides never
import each other. Subcommands import what they start lazily, so ``stt api`` loads no engine.

* ``main``: the argument parser and the dispatch to subcommands (the console entry point);
* ``service``: ``run``, ``api``, ``worker``, ``migrate`` and ``reconcile``;
* ``keys``: ``apikey create|revoke|list``;
* ``backfill``: ``backfill`` and its options;
* ``transcribe``: ``transcribe FILE...`` in-process, without a queue.
"""
