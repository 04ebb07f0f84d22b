"""What the stamp page shows: the stamp behind a page token, its state for
the customer and the staff, and the card as the page pictures it.

The page is reached by an unguessable token (``{domain}/s/{token}``), never
by the sequential stampIdx. Anyone holding the link sees the card (count,
dates, state); the customer's personal fields need the customer's PIN
(``page/pin.py``). The staff's on-site actions are ``page/staff.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.kit.clock import utc_naive
from stampbook.kit.context import CallContext, zone_for
from stampbook.kit.runtime import Runtime
from stampbook.page import repository as page_repo
from stampbook.stamps import onsite
from stampbook.stamps import repository as stamp_repo
from stampbook.stamps.views import DEFAULT_STAMP_IMAGE_PATH, stamp_url

# Page tokens are secrets.token_urlsafe(24): 32 URL-safe characters. Anything
# that could not be one is refused before touching the database.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")

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


def token_shape_ok(token: str) -> bool:
    """True when ``token`` could be a page token (so a stampIdx never reaches the database)."""
    return TOKEN_PATTERN.fullmatch(token) is not None


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
    # The page of the stamp a renewing card's redemption issued (the next cycle).
    next_token: str | None = None
    # The shop's name and logo (dashboard settings), shown instead of "Stampbook".
    shop_name: str | None = None
    shop_logo: str | None = None

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
    next_token: str | None = None,
    shop: tuple[str | None, str | None] = (None, None),
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
        next_token=next_token,
        shop_name=shop[0],
        shop_logo=web_url(shop[1]),
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
        wallet=settings.wallet,
    )


async def find(conn: AsyncConnection, token: str, *, for_update: bool = False) -> Row[Any] | None:
    """The stamp behind a page token (None for anything that is not one)."""
    if not token_shape_ok(token):
        return None
    return await stamp_repo.view_by_token(conn, token=token, for_update=for_update)


@dataclass(frozen=True, slots=True)
class Loaded:
    """A stamp row with the zone its dates are read in (and, for the staff page,
    when on-site actions unlock for this client)."""

    row: Row[Any]
    zone: str
    onsite_locked_until: datetime | None = None
    next_token: str | None = None
    shop: tuple[str | None, str | None] = (None, None)


async def load(runtime: Runtime, token: str, *, page_address: str | None = None) -> Loaded | None:
    """The stamp behind ``token`` in a read transaction, or None; with
    ``page_address`` (the staff page's client), also the on-site lock that
    address is under on the card."""
    async with runtime.db.read() as conn:
        row = await find(conn, token)
        if row is None:
            return None
        zone = await zone_name(conn, runtime, row)
        locked_until = None
        if page_address is not None and row.onsite_yn == "Y":
            locked_until = await onsite.page_locked_until(
                conn,
                card_idx=row.card_idx,
                page_address=page_address,
                now=utc_naive(runtime.clock.now()),
            )
        next_token = None
        if row.next_stamp_idx is not None:
            renewed = await stamp_repo.view(
                conn, account_idx=row.account_idx, stamp_idx=row.next_stamp_idx
            )
            next_token = renewed.token if renewed is not None else None
        shop = await page_repo.account_face(conn, account_idx=row.account_idx)
    return Loaded(row, zone, locked_until, next_token, shop)


def view(runtime: Runtime, loaded: Loaded, *, unlocked: bool = False) -> Card:
    """The page's picture of a loaded stamp, as of now."""
    clock = runtime.clock
    return card_view(
        loaded.row,
        today=clock.today(zone_for(loaded.zone)),
        now=utc_naive(clock.now()),
        public_url=runtime.settings.public_url,
        unlocked=unlocked,
        onsite_locked_until=loaded.onsite_locked_until,
        next_token=loaded.next_token,
        shop=loaded.shop,
    )
