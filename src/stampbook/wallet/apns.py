"""Apple Push Notification service for Wallet passes: one empty push
(``{"aps":{}}``) per registered device tells Wallet to fetch the pass again.

HTTP/2 (httpx with h2), ``apns-topic`` the pass type id. Authentication is a
provider token (an ES256 JWT from an APNs auth key, renewed every 50 minutes,
as Apple allows 20 to 60) or, without one, the pass type certificate itself
as the TLS client certificate.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from stampbook.config import Settings

PAYLOAD = b'{"aps":{}}'
TOKEN_RENEW_SECONDS = 50 * 60


@dataclass(frozen=True, slots=True)
class Answer:
    """What one push came to: an HTTP status, or an error instead of one."""

    status_code: int | None
    error: str | None = None
    retry_after: str | None = None


def tls_context(settings: Settings) -> ssl.SSLContext:
    """TLS for APNs: the system's trust (plus ``apns_ca_file``) and, for
    certificate auth, the pass type certificate as the client certificate."""
    context = ssl.create_default_context()
    if settings.apns_ca_file:
        context.load_verify_locations(cafile=settings.apns_ca_file)
    if not settings.apns_key:
        assert settings.apple_cert is not None and settings.apple_key is not None
        context.load_cert_chain(
            settings.apple_cert, settings.apple_key, password=settings.apple_key_password
        )
    return context


class ApnsClient:
    """Sends pass-update pushes over one HTTP/2 connection pool."""

    def __init__(
        self,
        settings: Settings,
        *,
        auth_key: ec.EllipticCurvePrivateKey | None,
    ) -> None:
        assert settings.apple_pass_type_id is not None and settings.apple_team_id is not None
        self.topic = settings.apple_pass_type_id
        self.team_id = settings.apple_team_id
        self.key_id = settings.apns_key_id
        self.auth_key = auth_key
        self.base_url = settings.apns_url.rstrip("/")
        self._token: tuple[str, float] | None = None
        self._client = httpx.AsyncClient(
            http1=False,
            http2=True,
            verify=tls_context(settings),
            timeout=httpx.Timeout(settings.apns_timeout_seconds),
            trust_env=False,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close the connection."""
        await self._client.aclose()

    def provider_token(self) -> str | None:
        """The current provider token (token auth), or None (certificate auth)."""
        if self.auth_key is None:
            return None
        if self._token is None or self._token[1] <= time.monotonic():
            token = jwt.encode(
                {"iss": self.team_id, "iat": int(time.time())},
                self.auth_key,
                algorithm="ES256",
                headers={"kid": self.key_id},
            )
            self._token = (token, time.monotonic() + TOKEN_RENEW_SECONDS)
        return self._token[0]

    async def push(self, push_token: str) -> Answer:
        """Tell one device that its pass changed."""
        headers = {"apns-topic": self.topic, "content-type": "application/json"}
        token = self.provider_token()
        if token is not None:
            headers["authorization"] = f"bearer {token}"
        try:
            answer = await self._client.post(
                f"{self.base_url}/3/device/{push_token}", content=PAYLOAD, headers=headers
            )
        except httpx.HTTPError as exc:
            return Answer(None, f"{type(exc).__name__}: {exc}"[:500])
        if answer.status_code == 403 and "ExpiredProviderToken" in answer.text:
            self._token = None
        return Answer(
            answer.status_code,
            None if answer.is_success else answer.text[:500],
            answer.headers.get("retry-after"),
        )
