"""SQL for cards. Builds and runs statements; never commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, delete, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.db.schema import card, stamp


async def get(
    conn: AsyncConnection,
    *,
    account_idx: int,
    card_idx: int,
    for_update: bool = False,
    for_share: bool = False,
) -> Row[Any] | None:
    """The card, or None when it is not in this account.

    ``for_share`` holds the card against a concurrent update until this
    transaction ends (issuing or moving a stamp copies its maxStamps).
    """
    query = select(card).where(card.c.card_idx == card_idx, card.c.account_idx == account_idx)
    if for_update or for_share:
        query = query.with_for_update(read=for_share and not for_update)
    return (await conn.execute(query)).first()


async def insert_card(conn: AsyncConnection, values: dict[str, Any]) -> int:
    """Insert a card; returns its cardIdx."""
    result = await conn.execute(insert(card).values(**values).returning(card.c.card_idx))
    return int(result.scalar_one())


async def update_card(
    conn: AsyncConnection, *, account_idx: int, card_idx: int, values: dict[str, Any]
) -> None:
    """Set columns of a card."""
    await conn.execute(
        update(card)
        .where(card.c.card_idx == card_idx, card.c.account_idx == account_idx)
        .values(**values)
    )


async def delete_card(conn: AsyncConnection, *, account_idx: int, card_idx: int) -> bool:
    """Delete a card (the caller has checked it has no stamps)."""
    result = await conn.execute(
        delete(card).where(card.c.card_idx == card_idx, card.c.account_idx == account_idx)
    )
    return bool(result.rowcount)


async def has_stamps(conn: AsyncConnection, *, card_idx: int) -> bool:
    """True when any stamp was issued on the card."""
    query = select(exists().where(stamp.c.card_idx == card_idx))
    return bool((await conn.execute(query)).scalar())


async def highest_count(conn: AsyncConnection, *, card_idx: int) -> int:
    """The largest count among the card's stamps (0 when none)."""
    query = select(func.coalesce(func.max(stamp.c.stamps), 0)).where(stamp.c.card_idx == card_idx)
    return int((await conn.execute(query)).scalar_one())


async def list_cards(
    conn: AsyncConnection, *, account_idx: int, limit: int, before_idx: int | None
) -> list[Row[Any]]:
    """A page of the account's cards, newest first (``limit + 1`` rows at most)."""
    query = select(card).where(card.c.account_idx == account_idx)
    if before_idx is not None:
        query = query.where(card.c.card_idx < before_idx)
    query = query.order_by(card.c.card_idx.desc()).limit(limit + 1)
    return list((await conn.execute(query)).all())
