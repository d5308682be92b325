"""``python -m stt_cli``: the ``stt`` command without its console script (``stt run`` uses it to
start the API as a child process)."""

from __future__ import annotations

import sys

from stt_cli.main import main

sys.exit(main())
