"""API keys: generation, hashing, storage and constant-time lookup.

Keys come from two places and share one namespace of names: ``STT_API_KEYS`` (``name:sha256``
pairs, so the settings never hold a usable secret) and the ``api_keys`` table (``stt apikey
create NAME`` prints the key once and stores only its SHA-256). A job belongs to the *name* of
the key that submitted it, so a key revoked and created again under the same name (rotation)
keeps its jobs. A key is high-entropy, so one unsalted SHA-256 is enough; comparison is always
``hmac.compare_digest`` of hashes, never ``==`` on secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.store.tables import ApiKey, utcnow

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
HASH_RE = re.compile(r"[0-9a-f]{64}")
KEY_PREFIX = "stt_"
# The stored lookup prefix: "stt_" plus 8 random characters. It finds the row and is shown by
# `stt apikey list`; the remaining 35 characters (~210 bits) stay secret.
PREFIX_LEN = 12
MAX_KEY_LEN = 256
_FORMAT = "STT_API_KEYS entries are name:sha256hex (the SHA-256 of a key, never the key itself)"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling: the key's name (the owner of its jobs) and where the key is configured."""

    name: str
    source: str  # "env" | "db"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def valid_name(name: str) -> bool:
    return NAME_RE.fullmatch(name) is not None


def parse_configured_keys(value: object) -> dict[str, str]:
    """``"a:<sha256>,b:<sha256>"`` (or a list of those, or a dict) -> {name: sha256}.

    Raises ValueError without echoing the value: a plaintext key pasted here must not end up in
    a log line or a traceback.
    """
    if isinstance(value, dict):
        pairs = list(value.items())
    else:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError(_FORMAT)
        pairs = [str(item).strip().partition(":")[::2] for item in items if str(item).strip()]
    keys: dict[str, str] = {}
    for name, digest in pairs:
        name, digest = str(name).strip(), str(digest).strip().lower()
        if not valid_name(name) or HASH_RE.fullmatch(digest) is None:
            raise ValueError(_FORMAT)
        if name in keys:
            raise ValueError("STT_API_KEYS names a key twice")
        keys[name] = digest
    return keys


def keys_configured(configured: dict[str, str], session: Session) -> bool:
    """Whether authentication is on: any key in the settings or any key ever stored.

    Revoked keys count: revoking the last (perhaps leaked) key must lock everyone out, not
    open the API to everyone. Only removing the rows themselves makes it open again.
    """
    if configured:
        return True
    return session.scalar(select(ApiKey.id).limit(1)) is not None


def authenticate(presented: str, configured: dict[str, str], session: Session) -> Identity | None:
    """The identity a presented key belongs to, or None."""
    if not presented or len(presented) > MAX_KEY_LEN:
        return None
    digest = hash_key(presented)
    found: Identity | None = None
    for name, expected in configured.items():  # every entry compared: no early exit
        if hmac.compare_digest(digest, expected) and found is None:
            found = Identity(name, "env")
    if found is not None or not presented.startswith(KEY_PREFIX):
        return found
    rows = session.scalars(
        select(ApiKey).where(
            ApiKey.key_prefix == presented[:PREFIX_LEN], ApiKey.revoked_at.is_(None)
        )
    )
    for row in rows:
        if hmac.compare_digest(digest, row.key_hash):
            return Identity(row.name, "db")
    return None


def create_key(session: Session, name: str, configured: dict[str, str]) -> str:
    """Store a new key under ``name`` and return it: the only time it is ever seen."""
    if not valid_name(name):
        raise ValueError("a key name is 1-64 letters, digits, '.', '_' or '-'")
    if name in configured:
        raise ValueError(f"{name!r} is already configured in STT_API_KEYS")
    key = generate_key()
    session.add(ApiKey(name=name, key_prefix=key[:PREFIX_LEN], key_hash=hash_key(key)))
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ValueError(f"an active key named {name!r} exists; revoke it first") from exc
    return key


def revoke_key(session: Session, name: str) -> bool:
    """Revoke the active key named ``name``; False when there is none."""
    row = session.scalar(select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None)))
    if row is None:
        return False
    row.revoked_at = utcnow()
    session.commit()
    return True


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.name)))


def scoped_idempotency_key(owner: str | None, raw: str | None) -> str | None:
    """Idempotency keys are per API key: another key's ``Idempotency-Key`` never replays a job
    that is not its own (key names contain no ':', so the scope cannot be forged)."""
    if raw is None or owner is None:
        return raw
    return f"key:{owner}:{raw}"
