"""Standard Webhooks signatures (https://www.standardwebhooks.com): sign here, verify anywhere.

The signed content is ``"{webhook-id}.{webhook-timestamp}.{body}"``; the signature is the base64
HMAC-SHA256 of it under the secret's key, sent as ``webhook-signature: v1,<base64>``. Secrets are
written ``whsec_<base64 key>``; the prefix is stripped and the rest decoded to get the key, as
the spec says, so receivers can use any Standard Webhooks library instead of this module.

This module has no dependency on the rest of the service: receivers may copy it as is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets as _random
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
MIN_KEY_BYTES = 16


class VerificationError(Exception):
    """The request is not a genuine, fresh webhook from us: answer 4xx and drop it."""


def generate_secret(nbytes: int = 32) -> str:
    """A new ``whsec_`` secret for STT_WEBHOOK_SECRETS (the spec asks for 24 to 64 bytes)."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(nbytes)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; ValueError if it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"webhook secrets start with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a webhook secret's key must be at least {MIN_KEY_BYTES} bytes")
    return key


def sign(msg_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` under the secret's key."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signed_headers(
    msg_id: str, body: bytes, secret: str, timestamp: int | None = None
) -> dict[str, str]:
    """The three headers a delivery carries; the timestamp is "now" unless given."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(msg_id, stamp, body, secret),
    }


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secrets: str | Sequence[str],
    tolerance_s: float = 300,
    now: float | None = None,
) -> Any:
    """Check a received webhook and return its parsed JSON body; VerificationError if not ours.

    Several secrets may be given (rotation): any one matching is enough. The timestamp must be
    within ``tolerance_s`` of ``now``, so a captured request cannot be replayed later. Pass the
    raw body bytes exactly as received: re-serialised JSON would not match the signature.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    msg_id, stamp, sent = (
        lowered.get(name) for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    )
    if not (msg_id and stamp and sent):
        raise VerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    timestamp = _fresh_timestamp(stamp, tolerance_s, time.time() if now is None else now)
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    expected = [sign(msg_id, timestamp, body, secret) for secret in keys]
    if not _any_match(sent.split(), expected):
        raise VerificationError("no signature matches")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise VerificationError("the body is not JSON") from exc


def _fresh_timestamp(raw: str, tolerance_s: float, now: float) -> int:
    try:
        timestamp = int(raw)
    except ValueError as exc:
        raise VerificationError("webhook-timestamp is not an integer") from exc
    if abs(now - timestamp) > tolerance_s:
        raise VerificationError("webhook-timestamp is outside the tolerance")
    return timestamp


def _any_match(received: Iterable[str], expected: Sequence[str]) -> bool:
    """Constant-time comparison of every received ``v1,...`` entry against every expected one."""
    found = False
    for candidate in received:
        for wanted in expected:
            found |= hmac.compare_digest(candidate.encode(), wanted.encode())
    return found
