"""Callback URLs at submission: the rule the API and the backfill command both apply.

A URL accepted here is checked again before every attempt (``shared.delivery.url_policy``);
this is only the check at the door, so a caller hears at once why no webhook will come.
"""

from __future__ import annotations

from shared.delivery.url_policy import UrlPolicy, check_url
from shared.errors import ErrorCode, SttError
from shared.settings import Settings

PAYLOAD_MODES = ("full", "thin")


def accept_callback_url(url: str, settings: Settings) -> None:
    """The submission rule for a callback URL (API and backfill alike); SttError if refused.

    No secret means no webhooks: an unsigned request, or one signed with a generated secret
    nobody knows, could not be told from a forgery by the receiver. Refusing at the door says
    so at once, where sending nothing would fail silently hours later.
    """
    if not settings.webhook_secrets:
        raise SttError(
            ErrorCode.WEBHOOKS_DISABLED,
            "this server sends no webhooks: set STT_WEBHOOK_SECRETS to enable callback_url",
        )
    try:
        check_url(url, UrlPolicy.from_entries(settings.webhook_allowed_hosts))
    except OSError as exc:
        raise SttError(
            ErrorCode.CALLBACK_URL_NOT_ALLOWED, f"callback_url host does not resolve: {exc}"
        ) from exc
