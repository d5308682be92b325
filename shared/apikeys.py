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
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.settings import valid_key_name
from shared.store.tables import ApiKey, utcnow

KEY_PREFIX = "stt_"
# The stored lookup prefix: "stt_" plus 8 random characters. It finds the row and is shown by
# `stt apikey list`; the remaining 35 characters (~210 bits) stay secret.
PREFIX_LEN = 12
MAX_KEY_LEN = 256


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling: the key's name (the owner of its jobs) and where the key is configured."""

    name: str
    source: str  # "env" | "db"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


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
    if not valid_key_name(name):
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
