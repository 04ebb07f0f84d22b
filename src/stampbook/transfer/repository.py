"""SQL of the import: lookups by many ids at once and inserts of many rows at
once (a migration moves 100,000 stamps, not one). Builds and runs
statements; never commits."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Row, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.db.schema import card, stamp, stamp_event
from stampbook.db.sequences import keep_ids_above

# What an already imported stamp is compared on (stamp columns only: a row
# already here never creates a card).
COMPARED_COLUMNS = (
    "stamps",
    "strt_ymd",
    "end_ymd",
    "active_yn",
    "use_yn",
    "memo",
    "user_id",
    "user_nm",
    "user_phnno",
    "user_eml",
    "user_etc1",
    "user_etc2",
    "reg_ymdt",
)

_EXISTING = select(
    stamp.c.stamp_idx, stamp.c.account_idx, *(stamp.c[name] for name in COMPARED_COLUMNS)
)
_INSERT_STAMP = insert(stamp)
_INSERT_EVENT = insert(stamp_event)


async def stamps_by_idx(conn: AsyncConnection, ids: Collection[int]) -> dict[int, Row[Any]]:
    """The stamps with these ids, in any account, by stampIdx."""
    if not ids:
        return {}
    rows = await conn.execute(_EXISTING.where(stamp.c.stamp_idx.in_(list(ids))))
    return {int(row.stamp_idx): row for row in rows}


async def taken_tokens(conn: AsyncConnection, tokens: Collection[str]) -> set[str]:
    """Which of these page tokens some stamp already has."""
    if not tokens:
        return set()
    rows = await conn.execute(select(stamp.c.token).where(stamp.c.token.in_(list(tokens))))
    return {str(token) for (token,) in rows}


async def card_named(conn: AsyncConnection, *, account_idx: int, name: str) -> Row[Any] | None:
    """The account's oldest card called ``name``, or None."""
    query = (
        select(card)
        .where(card.c.account_idx == account_idx, card.c.card_nm == name)
        .order_by(card.c.card_idx)
        .limit(1)
    )
    return (await conn.execute(query)).first()


async def card_idx_taken(conn: AsyncConnection, *, card_idx: int) -> bool:
    """True when any account has a card with this cardIdx."""
    query = select(card.c.card_idx).where(card.c.card_idx == card_idx)
    return (await conn.execute(query)).first() is not None


async def insert_stamps(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Insert stamps with their own stampIdx values (one statement, many rows)."""
    if rows:
        await conn.execute(_INSERT_STAMP, rows)


async def insert_events(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Append ledger rows (one statement, many rows)."""
    if rows:
        await conn.execute(_INSERT_EVENT, rows)


async def keep_generated_ids_above(
    conn: AsyncConnection, *, stamp_floor: int, card_floor: int
) -> None:
    """New stamps and cards are numbered above these (``db.sequences``)."""

    def raise_floors(bind: Any) -> None:
        if stamp_floor > 0:
            keep_ids_above(bind, "stamp", "stamp_idx", stamp_floor)
        if card_floor > 0:
            keep_ids_above(bind, "card", "card_idx", card_floor)

    await conn.run_sync(raise_floors)
