"""Signatures a receiver can check with standardwebhooks, or with plain HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from stampbook.webhooks.signing import headers, new_secret

BODY = '{"type":"stamp.added","timestamp":"2026-03-01 12:00:00","data":{"stampIdx":1}}'


def test_secrets_are_whsec_and_24_random_bytes() -> None:
    made = {new_secret() for _ in range(20)}
    assert len(made) == 20
    for secret in made:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24


def test_the_headers_verify_with_the_standardwebhooks_package() -> None:
    secret = new_secret()
    sent = headers([secret], msg_id="msg_abc_1", timestamp=datetime.now(UTC), body=BODY)

    assert Webhook(secret).verify(BODY, sent) == {
        "type": "stamp.added",
        "timestamp": "2026-03-01 12:00:00",
        "data": {"stampIdx": 1},
    }
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, sent)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace("1}", "2}"), sent)


def test_the_signature_is_plain_hmac_sha256_as_docs_webhooks_md_shows() -> None:
    secret = new_secret()
    at = datetime(2026, 3, 1, 12, 0, 7, tzinfo=UTC)
    sent = headers([secret], msg_id="msg_abc_1", timestamp=at, body=BODY)

    # The recipe of docs/webhooks.md, without the library:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{sent['webhook-id']}.{sent['webhook-timestamp']}.{BODY}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()

    assert sent["webhook-timestamp"] == str(int(at.timestamp())) == "1772366407"
    assert sent["webhook-signature"] == f"v1,{expected}"


def test_while_a_secret_is_rotated_both_sign() -> None:
    old, new = new_secret(), new_secret()
    sent = headers([new, old], msg_id="msg_x_2", timestamp=datetime.now(UTC), body=BODY)

    assert len(sent["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(BODY, sent)
    Webhook(new).verify(BODY, sent)
