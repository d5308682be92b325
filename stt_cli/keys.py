"""``stt apikey create|revoke|list``: API keys kept in the database (only their hashes)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from shared.settings import Settings
from stt_cli.service import migrate

if TYPE_CHECKING:  # the database layer loads only when a key command runs
    from sqlalchemy.orm import Session


def add_apikey_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("apikey", help="API keys: once one exists, /v1 needs a key")
    actions = keys.add_subparsers(dest="apikey_command", required=True)
    actions.add_parser("create", help="create a key and print it (once)").add_argument("name")
    actions.add_parser("revoke", help="revoke the active key of this name").add_argument("name")
    actions.add_parser("list", help="names, prefixes and dates (never the keys)")


def apikey(settings: Settings, args: argparse.Namespace) -> int:
    from shared.store.sessions import make_engine, make_session_factory

    migrate(settings)  # a first key may well come before the first `stt run`
    actions = {"create": _apikey_create, "revoke": _apikey_revoke, "list": _apikey_list}
    with make_session_factory(make_engine(settings.database_url))() as session:
        return actions[args.apikey_command](settings, session, args)


def _apikey_create(settings: Settings, session: Session, args: argparse.Namespace) -> int:
    from shared.apikeys import create_key

    try:
        key = create_key(session, args.name, settings.api_keys)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(key)
    print(f"key {args.name!r} created: shown this once, only its hash is stored", file=sys.stderr)
    return 0


def _apikey_revoke(_settings: Settings, session: Session, args: argparse.Namespace) -> int:
    from shared.apikeys import revoke_key

    if revoke_key(session, args.name):
        print(f"revoked {args.name}", file=sys.stderr)
        return 0
    print(f"no active key named {args.name!r} in the database", file=sys.stderr)
    return 1


def _apikey_list(settings: Settings, session: Session, _args: argparse.Namespace) -> int:
    from shared.apikeys import list_keys

    for name in settings.api_keys:
        print(f"{name}\t(STT_API_KEYS)\t-\tactive")
    for row in list_keys(session):
        state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
        print(f"{row.name}\t{row.key_prefix}...\t{row.created_at:%Y-%m-%d %H:%M}\t{state}")
    return 0
