"""SQL for receipt codes. Builds and runs statements; never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.db.schema import card, stamp_code

_VIEW = select(
    stamp_code,
    card.c.card_nm,
    card.c.max_stamps.label("card_max_stamps"),
    card.c.active_yn.label("card_active_yn"),
).select_from(stamp_code.join(card, card.c.card_idx == stamp_code.c.card_idx))


async def insert_code(conn: AsyncConnection, values: dict[str, Any]) -> Row[Any]:
    """Store a new code (its hash only); returns its row."""
    result = await conn.execute(insert(stamp_code).values(**values).returning(*stamp_code.c))
    return result.one()


async def claim(
    conn: AsyncConnection,
    *,
    code_hash: str,
    account_idx: int,
    card_idx: int,
    stamp_idx: int,
    now: datetime,
) -> Row[Any] | None:
    """Mark the code used by ``stamp_idx`` if, and only if, it is this account's,
    for this card, unused, not revoked and not expired: one conditional UPDATE,
    so of any number of concurrent claims exactly one matches (on PostgreSQL
    the others wait for its row and then see it used). None when refused."""
    statement = (
        update(stamp_code)
        .where(
            stamp_code.c.code_hash == code_hash,
            stamp_code.c.account_idx == account_idx,
            stamp_code.c.card_idx == card_idx,
            stamp_code.c.used_at.is_(None),
            stamp_code.c.revoked_at.is_(None),
            stamp_code.c.expires_at > now,
        )
        .values(used_at=now, used_stamp_idx=stamp_idx)
        .returning(*stamp_code.c)
    )
    return (await conn.execute(statement)).first()


async def by_hash(conn: AsyncConnection, *, code_hash: str) -> Row[Any] | None:
    """The code with its card's name, whatever its state (None when unknown)."""
    return (await conn.execute(_VIEW.where(stamp_code.c.code_hash == code_hash))).first()


async def by_idx(conn: AsyncConnection, *, account_idx: int, code_idx: int) -> Row[Any] | None:
    """One of the account's codes with its card's name, or None."""
    query = _VIEW.where(stamp_code.c.code_idx == code_idx, stamp_code.c.account_idx == account_idx)
    return (await conn.execute(query)).first()


async def revoke(conn: AsyncConnection, *, account_idx: int, code_idx: int, now: datetime) -> bool:
    """Revoke a code that is neither used nor revoked; False otherwise."""
    result = await conn.execute(
        update(stamp_code)
        .where(
            stamp_code.c.code_idx == code_idx,
            stamp_code.c.account_idx == account_idx,
            stamp_code.c.used_at.is_(None),
            stamp_code.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return bool(result.rowcount)


async def list_codes(
    conn: AsyncConnection,
    *,
    account_idx: int,
    card_idx: int | None,
    limit: int,
    before_idx: int | None,
) -> list[Row[Any]]:
    """A page of the account's codes, newest first (``limit + 1`` rows at most)."""
    query = _VIEW.where(stamp_code.c.account_idx == account_idx)
    if card_idx is not None:
        query = query.where(stamp_code.c.card_idx == card_idx)
    if before_idx is not None:
        query = query.where(stamp_code.c.code_idx < before_idx)
    query = query.order_by(stamp_code.c.code_idx.desc()).limit(limit + 1)
    return list((await conn.execute(query)).all())
