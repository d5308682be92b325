"""A local model folder's licence, read from its model card, for any engine family.

Jobs record the licence of the model that ran them, and ``/readyz`` warns about a
non-commercial one; both the wav2vec2 and the Conformer engines read it the same way, so it
lives beside the protocol rather than inside one family.
"""

from __future__ import annotations

import re
from pathlib import Path

_LICENSE_LINE = re.compile(r"^license:\s*['\"]?([^'\"\s#]+)", re.MULTILINE)


def card_license(model: str) -> str | None:
    """The ``license:`` of a local model dir's README.md front matter (Hub model card format)."""
    readme = Path(model) / "README.md"
    try:
        text = readme.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("---"):
        return None
    front_matter = text[3:].split("\n---", 1)[0]
    match = _LICENSE_LINE.search(front_matter)
    return match.group(1) if match else None
