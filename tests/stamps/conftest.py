"""Helpers for the stamp API's HTTP tests: the fields each verb shows and the
stamp's rows straight from the database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from stampbook.db.schema import stamp, stamp_event
from stampbook.kit.db import Database
from tests.conftest import Api

VALIDATE_FIELDS = [
    "stampIdx", "domain", "cardIdx", "cardNm", "cardTtl", "stamps", "maxStamps", "stampUrl",
    "url", "strtYmd", "endYmd", "onsiteYn", "onsitePwd", "memo", "activeYn", "userId", "userNm",
    "userPhnno", "userEml", "userEtc1", "userEtc2", "stampImgUrl", "regYmdt", "payloadVersion",
]  # fmt: skip
# list shows every stamp as validate does, but never the card's on-site password.
LIST_FIELDS = [name for name in VALIDATE_FIELDS if name != "onsitePwd"]


def days(n: int) -> timedelta:
    return timedelta(days=n)


async def view(api: Api, stamp_idx: int) -> dict[str, Any]:
    """The stamp as list shows it (whatever its state)."""
    page = await api.ok("GET", "list", params={"limit": 100})
    return next(item for item in page["items"] if item["stampIdx"] == stamp_idx)


async def stored_row(database_url: str, stamp_idx: int) -> Any:
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            return (await conn.execute(select(stamp).where(stamp.c.stamp_idx == stamp_idx))).first()
    finally:
        await database.dispose()


async def event_count(database_url: str, stamp_idx: int) -> int:
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            rows = await conn.execute(
                select(stamp_event.c.event_idx).where(stamp_event.c.stamp_idx == stamp_idx)
            )
            return len(rows.all())
    finally:
        await database.dispose()
