"""The page's signed values: the signing key every worker shares, PIN sessions,
CSRF tokens and the remembered cards (each with its own salt), and a
browser's CSRF identity."""

from __future__ import annotations

import hashlib
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

from stampbook.kit.runtime import Runtime
from stampbook.page import repository as page_repo

PIN_SESSION_SECONDS = 7 * 24 * 3600
CSRF_MAX_AGE_SECONDS = 12 * 3600
CARDS_MAX_AGE_SECONDS = 365 * 24 * 3600
CARDS_REMEMBERED = 10
SECRET_SETTING = "page_secret"


def digest(value: str) -> str:
    """A short, non-reversible fingerprint used inside signed cookies."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


async def signing_secret(runtime: Runtime, cache: dict[str, str]) -> str:
    """STAMPBOOK_SECRET_KEY, or one generated once and kept in ``server_setting``
    so that every worker (and every restart) signs with the same key."""
    if runtime.settings.secret_key:
        return runtime.settings.secret_key
    if SECRET_SETTING not in cache:
        async with runtime.db.write() as conn:
            cache[SECRET_SETTING] = await page_repo.setting_or_insert(
                conn, name=SECRET_SETTING, candidate=secrets.token_urlsafe(32)
            )
    return cache[SECRET_SETTING]


class Signer:
    """Signed values for the page: PIN sessions and CSRF tokens, each with its own salt."""

    def __init__(self, secret: str) -> None:
        self._session = URLSafeTimedSerializer(secret, salt="stampbook.page.session")
        self._csrf = URLSafeTimedSerializer(secret, salt="stampbook.page.csrf")
        self._cards = URLSafeTimedSerializer(secret, salt="stampbook.page.cards")

    def cards(self, tokens: list[str]) -> str:
        """The cookie value remembering this browser's stamp pages, newest first."""
        return self._cards.dumps(tokens[:CARDS_REMEMBERED])

    def cards_of(self, value: str | None) -> list[str]:
        """The remembered page tokens ([] when absent, forged or too old)."""
        if not value:
            return []
        try:
            data = self._cards.loads(value, max_age=CARDS_MAX_AGE_SECONDS)
        except BadSignature:
            return []
        if not isinstance(data, list):
            return []
        return [token for token in data if isinstance(token, str)][:CARDS_REMEMBERED]

    def session(self, token: str, pin_hash: str) -> str:
        """The cookie value proving the PIN of this stamp was entered.

        It names the PIN's hash (by fingerprint), so resetting or changing the
        PIN ends every session opened with the old one.
        """
        return self._session.dumps({"t": digest(token), "p": digest(pin_hash)})

    def session_ok(self, value: str | None, token: str, pin_hash: str | None) -> bool:
        """True when ``value`` is a live session for this stamp and its current PIN."""
        if not value or not pin_hash:
            return False
        try:
            data = self._session.loads(value, max_age=PIN_SESSION_SECONDS)
        except BadSignature:
            return False
        return isinstance(data, dict) and data == {"t": digest(token), "p": digest(pin_hash)}

    def csrf(self, browser_id: str, token: str) -> str:
        """A form token bound to this browser's CSRF cookie and to this stamp."""
        return self._csrf.dumps(digest(f"{browser_id}:{token}"))

    def csrf_ok(self, value: str | None, browser_id: str | None, token: str) -> bool:
        """True when a posted form token matches this browser and this stamp."""
        if not value or not browser_id:
            return False
        try:
            data = self._csrf.loads(value, max_age=CSRF_MAX_AGE_SECONDS)
        except BadSignature:
            return False
        return isinstance(data, str) and secrets.compare_digest(
            data, digest(f"{browser_id}:{token}")
        )


def new_browser_id() -> str:
    """The random value of a browser's CSRF cookie."""
    return secrets.token_urlsafe(18)
