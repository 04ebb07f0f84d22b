"""Google Wallet: a LoyaltyClass per card, a LoyaltyObject per stamp, the
"Save to Google Wallet" link, and the REST calls that keep an object current.

The save link is ``https://pay.google.com/gp/v/save/{jwt}``: an RS256 JWT
signed with the service account's key (``typ: savetowallet``, ``origins`` the
server's public URL) carrying the class and the object, so Google creates
them when the customer saves. Every later change PATCHes the object through
the REST API (``GoogleClient.sync``), with a service-account OAuth token
(RFC 7523 JWT bearer grant) cached until shortly before it expires.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from stampbook.config import Settings
from stampbook.wallet.content import STATE_VOID, PassContent
from stampbook.wallet.credentials import ServiceAccount

SAVE_URL = "https://pay.google.com/gp/v/save/"
SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
TOKEN_LIFETIME_SECONDS = 3600
TOKEN_EARLY_SECONDS = 60  # renew a token this long before it expires
# The stamp page's state as a Google object's state.
_STATES = {
    "active": "ACTIVE",
    "complete": "ACTIVE",
    "not_started": "ACTIVE",
    "used": "COMPLETED",
    "expired": "EXPIRED",
    "inactive": "INACTIVE",
    STATE_VOID: "INACTIVE",
}


def class_id(issuer_id: str, card_idx: int) -> str:
    """The LoyaltyClass of a card."""
    return f"{issuer_id}.stampbook-card-{card_idx}"


def object_id(issuer_id: str, serial: str) -> str:
    """The LoyaltyObject of a pass (its opaque serial, never the stampIdx)."""
    return f"{issuer_id}.{serial}"


def _localized(en: str, ko: str) -> dict[str, Any]:
    return {
        "defaultValue": {"language": "en-US", "value": en},
        "translatedValues": [{"language": "ko", "value": ko}],
    }


def logo_url(public_url: str) -> str:
    """The program logo Google shows: the pass's built-in icon, served by this server."""
    return f"{public_url}/wallet/images/icon@3x.png"


def loyalty_class(content: PassContent, *, issuer_id: str, public_url: str) -> dict[str, Any]:
    """The card's LoyaltyClass."""
    document: dict[str, Any] = {
        "id": class_id(issuer_id, content.card_idx),
        "issuerName": content.shop,
        "programName": content.card_name,
        "programLogo": {"sourceUri": {"uri": logo_url(public_url)}},
        "reviewStatus": "UNDER_REVIEW",
        "hexBackgroundColor": "#78350f",
    }
    if content.reward:
        document["rewardsTier"] = content.reward
    return document


def loyalty_object(content: PassContent, *, issuer_id: str, serial: str) -> dict[str, Any]:
    """The stamp's LoyaltyObject: balance = stamps, a label, the page's QR
    code, the validity and a state that follows the stamp's."""
    return {
        "id": object_id(issuer_id, serial),
        "classId": class_id(issuer_id, content.card_idx),
        "state": _STATES.get(content.state, "ACTIVE"),
        "accountId": serial,
        "accountName": content.card_name,
        "loyaltyPoints": {
            "label": f"Stamps / 스탬프 ({content.max_stamps})",
            "balance": {"int": content.stamps},
        },
        "barcode": {"type": "QR_CODE", "value": content.page_url, "alternateText": content.count},
        "validTimeInterval": {
            "start": {"date": f"{content.starts.isoformat()}T00:00:00Z"},
            "end": {"date": f"{content.ends.isoformat()}T23:59:59Z"},
        },
        "linksModuleData": {
            "uris": [{"uri": content.page_url, "description": "Stamp card / 스탬프 카드"}]
        },
    }


def save_url(
    content: PassContent,
    *,
    account: ServiceAccount,
    issuer_id: str,
    serial: str,
    public_url: str,
    now: float | None = None,
) -> str:
    """The "Save to Google Wallet" link of a pass."""
    parts = urlsplit(public_url)
    claims = {
        "iss": account.email,
        "aud": "google",
        "typ": "savetowallet",
        "iat": int(now if now is not None else time.time()),
        "origins": [f"{parts.scheme}://{parts.netloc}"],
        "payload": {
            "loyaltyClasses": [loyalty_class(content, issuer_id=issuer_id, public_url=public_url)],
            "loyaltyObjects": [loyalty_object(content, issuer_id=issuer_id, serial=serial)],
        },
    }
    headers = {"kid": account.key_id} if account.key_id else None
    return SAVE_URL + jwt.encode(claims, account.key, algorithm="RS256", headers=headers)


@dataclass(frozen=True, slots=True)
class Answer:
    """What one Google call came to: an HTTP status, or an error instead."""

    status_code: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300


class GoogleClient:
    """The Google Wallet REST API as the service account."""

    def __init__(
        self,
        settings: Settings,
        account: ServiceAccount,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        assert settings.google_issuer_id is not None
        self.issuer_id = settings.google_issuer_id
        self.public_url = settings.public_url
        self.account = account
        self.api_url = settings.google_api_url.rstrip("/")
        self.token_url = settings.google_token_url
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.google_timeout_seconds),
            trust_env=False,
            follow_redirects=False,
            transport=transport,
        )
        self._token: tuple[str, float] | None = None
        self._token_lock = asyncio.Lock()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    async def token(self) -> str:
        """An OAuth access token, fetched once and reused until shortly before it expires."""
        async with self._token_lock:
            if self._token is not None and self._token[1] > time.monotonic():
                return self._token[0]
            issued = int(time.time())
            assertion = jwt.encode(
                {
                    "iss": self.account.email,
                    "scope": SCOPE,
                    "aud": self.token_url,
                    "iat": issued,
                    "exp": issued + TOKEN_LIFETIME_SECONDS,
                },
                self.account.key,
                algorithm="RS256",
            )
            answer = await self._client.post(
                self.token_url,
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                    "assertion": assertion,
                },
            )
            answer.raise_for_status()
            body = answer.json()
            lifetime = float(body.get("expires_in", TOKEN_LIFETIME_SECONDS))
            self._token = (
                str(body["access_token"]),
                time.monotonic() + max(lifetime - TOKEN_EARLY_SECONDS, 0),
            )
            return self._token[0]

    async def _call(self, method: str, path: str, document: dict[str, Any]) -> Answer:
        try:
            token = await self.token()
            answer = await self._client.request(
                method,
                f"{self.api_url}/{path}",
                json=document,
                headers={"authorization": f"Bearer {token}"},
            )
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            return Answer(None, f"{type(exc).__name__}: {exc}"[:500])
        if answer.status_code == 401:
            self._token = None  # revoked or expired early: the next call fetches a new one
        return Answer(answer.status_code, None if answer.is_success else answer.text[:500])

    async def sync(self, content: PassContent, *, serial: str) -> Answer:
        """Bring the pass's object up to date: PATCH it; when Google does not know
        it yet (404), create the card's class (or update it, 409) and the object."""
        document = loyalty_object(content, issuer_id=self.issuer_id, serial=serial)
        patched = await self._call("PATCH", f"loyaltyObject/{document['id']}", document)
        if patched.status_code != 404:
            return patched
        klass = loyalty_class(content, issuer_id=self.issuer_id, public_url=self.public_url)
        made = await self._call("POST", "loyaltyClass", klass)
        if made.status_code == 409:
            made = await self._call("PATCH", f"loyaltyClass/{klass['id']}", klass)
        if not made.ok:
            return made
        created = await self._call("POST", "loyaltyObject", document)
        if created.status_code == 409:  # made meanwhile by the customer's save
            return await self._call("PATCH", f"loyaltyObject/{document['id']}", document)
        return created
