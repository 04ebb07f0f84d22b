"""Standard Webhooks signatures, made with the ``standardwebhooks`` package.

Each request carries ``webhook-id`` (the message id, the same on every retry),
``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``; several
space-separated signatures while a rotated secret is still honoured).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime

from standardwebhooks import Webhook

from stampbook import __version__

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
USER_AGENT = f"Stampbook-Webhooks/{__version__}"


def new_secret() -> str:
    """A fresh endpoint secret: ``whsec_`` and 24 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(secret: str, *, msg_id: str, timestamp: datetime, body: str) -> str:
    """One ``v1,<base64>`` signature of ``body`` for ``msg_id`` at ``timestamp``."""
    # standardwebhooks reads the timestamp as UTC; hand it UTC, whatever it was given in.
    at = timestamp.astimezone(UTC)
    signed: str = Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body)
    return signed


def headers(
    secrets_in_use: Iterable[str], *, msg_id: str, timestamp: datetime, body: str
) -> dict[str, str]:
    """The request headers of one attempt, signed with every secret in use."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(
            signature(secret, msg_id=msg_id, timestamp=timestamp, body=body)
            for secret in secrets_in_use
        ),
    }
