"""SQL for the stamp page: the customer PIN's columns, the account's zone and the
signing secret. Builds and runs statements; never commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.db.schema import account, server_setting, stamp


async def account_timezone(conn: AsyncConnection, *, account_idx: int) -> str | None:
    """The account's own time zone, or None when it uses the server's."""
    query = select(account.c.timezone).where(account.c.account_idx == account_idx)
    value = (await conn.execute(query)).scalar_one_or_none()
    return str(value) if value else None


async def account_face(conn: AsyncConnection, *, account_idx: int) -> tuple[str | None, str | None]:
    """The shop's display name and logo URL the account set (None when not)."""
    query = select(account.c.display_name, account.c.logo_url).where(
        account.c.account_idx == account_idx
    )
    row = (await conn.execute(query)).first()
    return (row.display_name, row.logo_url) if row else (None, None)


async def set_pin_if_unset(conn: AsyncConnection, *, stamp_idx: int, pin_hash: str) -> bool:
    """Store the first PIN; False when one was set meanwhile (two first visits racing)."""
    result = await conn.execute(
        update(stamp)
        .where(stamp.c.stamp_idx == stamp_idx, stamp.c.pin_hash.is_(None))
        .values(pin_hash=pin_hash, pin_failures=0, pin_locked_until=None)
    )
    return bool(result.rowcount)


async def set_pin_failures(
    conn: AsyncConnection, *, stamp_idx: int, failures: int, locked_until: datetime | None
) -> None:
    """Record the PIN failure count and lock of a stamp already locked by this transaction."""
    await conn.execute(
        update(stamp)
        .where(stamp.c.stamp_idx == stamp_idx)
        .values(pin_failures=failures, pin_locked_until=locked_until)
    )


async def clear_pin_failures(conn: AsyncConnection, *, stamp_idx: int, pin_hash: str) -> None:
    """Forget failures after a right PIN, unless the PIN was reset or changed meanwhile."""
    await conn.execute(
        update(stamp)
        .where(stamp.c.stamp_idx == stamp_idx, stamp.c.pin_hash == pin_hash)
        .values(pin_failures=0, pin_locked_until=None)
    )


async def setting_or_insert(conn: AsyncConnection, *, name: str, candidate: str) -> str:
    """The server setting ``name``; stores ``candidate`` first when it has none.

    ON CONFLICT DO NOTHING makes concurrent first requests (any number of
    workers) agree: whichever insert lands first is what everyone reads.
    """
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    await conn.execute(
        insert(server_setting).values(name=name, value=candidate).on_conflict_do_nothing()
    )
    query = select(server_setting.c.value).where(server_setting.c.name == name)
    return str((await conn.execute(query)).scalar_one())
