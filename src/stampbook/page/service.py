"""The stamp page's rules: what the page shows, the customer PIN, the signed
session and CSRF tokens, and the staff's on-site actions.

The page is reached by an unguessable token (``{domain}/s/{token}``), never
by the sequential stampIdx. Anyone holding the link sees the card (count,
dates, state); the customer's personal fields need the customer's PIN.

PIN checks are argon2 verifications (tens of milliseconds), so they run
outside any write transaction: each attempt is first *counted* in a short
transaction (which also decides the lock), then verified, then cleared when
right. Counting before verifying means parallel guesses can never get more
than the allowed number of tries per lock period.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.kit.context import CallContext, zone_for
from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.runtime import Runtime
from stampbook.page import repository as page_repo
from stampbook.stamps import onsite, rules
from stampbook.stamps import repository as stamp_repo
from stampbook.stamps import service as stamps
from stampbook.stamps.views import DEFAULT_STAMP_IMAGE_PATH, stamp_url

# Page tokens are secrets.token_urlsafe(24): 32 URL-safe characters. Anything
# that could not be one is refused before touching the database.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
PIN_PATTERN = re.compile(r"[0-9]{4,6}")
PIN_SESSION_SECONDS = 7 * 24 * 3600
CSRF_MAX_AGE_SECONDS = 12 * 3600
SECRET_SETTING = "page_secret"

STATE_ACTIVE = "active"
STATE_COMPLETE = "complete"
STATE_USED = "used"
STATE_EXPIRED = "expired"
STATE_NOT_STARTED = "not_started"
STATE_INACTIVE = "inactive"

ONSITE_ADD = "add"
ONSITE_REDEEM = "redeem"

# The personal fields the PIN guards, in the order the page lists them.
PERSONAL_FIELDS = ("user_nm", "user_phnno", "user_eml", "user_id", "user_etc1", "user_etc2")

_hasher = PasswordHasher()


def token_shape_ok(token: str) -> bool:
    """True when ``token`` could be a page token (so a stampIdx never reaches the database)."""
    return TOKEN_PATTERN.fullmatch(token) is not None


def digest(value: str) -> str:
    """A short, non-reversible fingerprint used inside signed cookies."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


# --- the signing secret -------------------------------------------------------


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


# --- what the page shows -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Card:
    """One stamp as the page shows it; personal fields only once the PIN is entered."""

    token: str
    name: str
    title: str | None
    stamps: int
    max_stamps: int
    image_url: str
    url: str | None
    strt: date
    end: date
    state: str
    onsite: bool
    page_url: str
    has_pin: bool
    pin_locked_minutes: int
    onsite_locked_minutes: int
    personal: tuple[tuple[str, str], ...]

    @property
    def to_go(self) -> int:
        """Stamps still missing for the reward."""
        return max(self.max_stamps - self.stamps, 0)

    @property
    def staff_action(self) -> str | None:
        """What staff can do now: add a stamp, redeem the reward, or nothing."""
        if not self.onsite:
            return None
        if self.state == STATE_ACTIVE:
            return ONSITE_ADD
        if self.state == STATE_COMPLETE:
            return ONSITE_REDEEM
        return None


def page_state(row: Any, today: date) -> str:
    """The card's state for the customer: why it can't be used, or where it stands."""
    if row.active_yn != "Y":
        return STATE_INACTIVE
    if row.use_yn == "Y":
        return STATE_USED
    if today < row.strt_ymd:
        return STATE_NOT_STARTED
    if today > row.end_ymd:
        return STATE_EXPIRED
    if row.stamps >= row.max_stamps:
        return STATE_COMPLETE
    return STATE_ACTIVE


def web_url(value: str | None) -> str | None:
    """``value`` when it is an absolute http(s) URL; anything else (``javascript:``,
    relative junk) is never put in a link or an image."""
    if not value:
        return None
    parts = urlsplit(value)
    return value if parts.scheme in ("http", "https") and parts.netloc else None


def minutes_left(until: datetime | None, now: datetime) -> int:
    """Whole minutes (rounded up) until ``until``; 0 when it has passed."""
    if until is None or until <= now:
        return 0
    return max(1, -(-int((until - now).total_seconds()) // 60))


def card_view(
    row: Any,
    *,
    today: date,
    now: datetime,
    public_url: str,
    unlocked: bool,
    onsite_locked_until: datetime | None = None,
) -> Card:
    """The page's picture of a stamp row (``now`` is naive UTC, as stored);
    ``onsite_locked_until`` is this client's on-site lock on the card, if any."""
    personal: tuple[tuple[str, str], ...] = ()
    if unlocked:
        personal = tuple(
            (name, str(getattr(row, name)))
            for name in PERSONAL_FIELDS
            if getattr(row, name) not in (None, "")
        )
    return Card(
        token=row.token,
        name=row.card_nm,
        title=row.card_ttl,
        stamps=row.stamps,
        max_stamps=row.max_stamps,
        # Our own mark is linked relative to the page, so it loads whatever
        # host name the customer used (the CSP allows 'self').
        image_url=web_url(row.stamp_img_url) or DEFAULT_STAMP_IMAGE_PATH,
        url=web_url(row.url),
        strt=row.strt_ymd,
        end=row.end_ymd,
        state=page_state(row, today),
        onsite=row.onsite_yn == "Y",
        page_url=stamp_url(row, public_url),
        has_pin=row.pin_hash is not None,
        pin_locked_minutes=minutes_left(row.pin_locked_until, now),
        onsite_locked_minutes=minutes_left(onsite_locked_until, now),
        personal=personal,
    )


async def zone_name(conn: AsyncConnection, runtime: Runtime, row: Any) -> str:
    """The time zone whose 'today' the stamp's dates are read in."""
    own = await page_repo.account_timezone(conn, account_idx=row.account_idx)
    return own or runtime.settings.timezone


def context_for(runtime: Runtime, row: Any, zone: str, *, source: str) -> CallContext:
    """The service-call context of a page action on ``row``'s account."""
    settings = runtime.settings
    return CallContext(
        account_idx=row.account_idx,
        zone=zone_for(zone),
        now=runtime.clock.now(),
        public_url=settings.public_url,
        source=source,
        lockout_failures=settings.lockout_failures,
        lockout_minutes=settings.lockout_minutes,
        lockout_address_failures=settings.lockout_address_failures,
    )


# --- the customer PIN -------------------------------------------------------------


def pin_format_ok(pin: str) -> bool:
    """True for 4 to 6 ASCII digits."""
    return PIN_PATTERN.fullmatch(pin) is not None


async def hash_pin(pin: str) -> str:
    """The argon2 hash of ``pin`` (computed off the event loop)."""
    return await asyncio.to_thread(_hasher.hash, pin)


async def pin_matches(pin_hash: str, pin: str) -> bool:
    """True when ``pin`` is the one ``pin_hash`` was made from (off the event loop)."""

    def verify() -> bool:
        try:
            return _hasher.verify(pin_hash, pin)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


@dataclass(frozen=True, slots=True)
class PinAttempt:
    """One counted try: the hash to check against, or the lock that forbids trying."""

    pin_hash: str | None
    failures: int
    locked_minutes: int

    @property
    def allowed(self) -> bool:
        """False when the page is locked (nothing may be verified)."""
        return self.pin_hash is not None


async def count_pin_attempt(
    conn: AsyncConnection, row: Row[Any], *, now: datetime, limit: int, lock_minutes: int
) -> PinAttempt:
    """Count one PIN try on a row locked by this transaction, before verifying it.

    Reaching ``limit`` tries locks the page for ``lock_minutes`` at once; a
    right PIN clears both afterwards (``clear_pin_failures``). A lock that has
    run out starts the count afresh.
    """
    if row.pin_locked_until is not None and row.pin_locked_until > now:
        return PinAttempt(None, row.pin_failures, minutes_left(row.pin_locked_until, now))
    lock_expired = row.pin_locked_until is not None
    failures = (0 if lock_expired else row.pin_failures) + 1
    locked_until = now + timedelta(minutes=lock_minutes) if failures >= limit else None
    await page_repo.set_pin_failures(
        conn, stamp_idx=row.stamp_idx, failures=failures, locked_until=locked_until
    )
    return PinAttempt(row.pin_hash, failures, minutes_left(locked_until, now))


# --- on-site staff actions -----------------------------------------------------------


class StaleFormError(Exception):
    """The card changed between showing the staff form and sending it."""


async def onsite_action(
    conn: AsyncConnection,
    ctx: CallContext,
    row: Row[Any],
    *,
    action: str,
    password: str,
    expected_stamps: int | None,
    client_address: str,
) -> None:
    """Add one stamp or redeem the reward for staff at the counter.

    The same service as the API does the work (same rules, ledger with
    ``source = ONSITE``, webhooks). ``row`` is locked by this transaction, so
    ``expected_stamps`` (the count the staff saw) reliably stops a form sent
    twice from adding twice. The stamp's state is checked before the
    password, so a used or expired stamp link cannot be used to guess it;
    tries count on the page's counters for the card and ``client_address``
    (``stamps/onsite.py``). Raises ``StampbookError`` to refuse; the caller
    commits anyway, so that wrong passwords are counted.
    """
    if row.onsite_yn != "Y":
        raise StampbookError(Code.ONSITE_NOT_ENABLED)
    if action not in (ONSITE_ADD, ONSITE_REDEEM):
        raise StampbookError(Code.INVALID_PARAMETER, param="action")
    if expected_stamps is not None and expected_stamps != row.stamps:
        raise StaleFormError
    if action == ONSITE_ADD:
        refusal = rules.add_refusal(rules.state_of(row), ctx.today, ctx.now_ms)
        if refusal is not None:
            raise StampbookError(refusal)
        await onsite.check_password(conn, ctx, row, password, page_address=client_address)
        await stamps.add(conn, ctx, stamp_idx=row.stamp_idx)
    else:
        await stamps.redeem(
            conn, ctx, stamp_idx=row.stamp_idx, onsite_pwd=password, page_address=client_address
        )


async def find(conn: AsyncConnection, token: str, *, for_update: bool = False) -> Row[Any] | None:
    """The stamp behind a page token (None for anything that is not one)."""
    if not token_shape_ok(token):
        return None
    return await stamp_repo.view_by_token(conn, token=token, for_update=for_update)
