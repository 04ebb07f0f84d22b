"""An account's own settings, kept by the dashboard: its time zone (the 'today'
of date rules and every date shown), and the shop's display name and logo,
which the customer's stamp page shows instead of the product name."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.db.schema import account
from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.schemas import storable_text

MAX_DISPLAY_NAME = 200
MAX_LOGO_URL = 2000


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """Every IANA time zone name this system knows, sorted."""
    return tuple(sorted(available_timezones()))


def _refuse(param: str) -> StampbookError:
    return StampbookError(Code.INVALID_PARAMETER, param=param)


def check_logo_url(value: str) -> str:
    """An absolute https URL (the stamp page's CSP loads images over https only)."""
    parts = urlsplit(value)
    if len(value) > MAX_LOGO_URL or parts.scheme != "https" or not parts.netloc:
        raise _refuse("logoUrl")
    return value


async def save(
    conn: AsyncConnection,
    *,
    account_idx: int,
    timezone: str | None,
    display_name: str | None,
    logo_url: str | None,
) -> None:
    """Store the three settings (None: the server's zone, the product name, no logo);
    1001 naming the field that is not acceptable."""
    if timezone is not None and timezone not in zone_names():
        raise _refuse("timezone")
    if display_name is not None and (
        not storable_text(display_name) or len(display_name) > MAX_DISPLAY_NAME
    ):
        raise _refuse("displayName")
    values: dict[str, Any] = {
        "timezone": timezone,
        "display_name": display_name,
        "logo_url": check_logo_url(logo_url) if logo_url else None,
    }
    await conn.execute(update(account).where(account.c.account_idx == account_idx).values(**values))
