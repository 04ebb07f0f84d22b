"""SQL for the on-site password's failure counters (``onsite_lockout``: one row
per card, and per card and page address). Builds and runs statements; never
commits. The rules that read and write them are ``stamps/onsite.py``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.db.schema import onsite_lockout


async def claim_lockout(conn: AsyncConnection, *, scope: str, subject: str) -> Row[Any]:
    """The counter (failures, window_start, locked_until) of ``scope``/``subject``,
    created empty when missing and locked for this transaction either way.

    An upsert rather than SELECT ... FOR UPDATE: a counter that does not exist
    yet has no row to lock, and two first failures must not both start at 1.
    """
    insert_for = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    upsert = insert_for(onsite_lockout).values(scope=scope, subject=subject, failures=0)
    statement = upsert.on_conflict_do_update(
        index_elements=[onsite_lockout.c.scope, onsite_lockout.c.subject],
        # A write that changes nothing, so that the row is locked (PostgreSQL).
        set_={"failures": onsite_lockout.c.failures},
    ).returning(
        onsite_lockout.c.failures, onsite_lockout.c.window_start, onsite_lockout.c.locked_until
    )
    return (await conn.execute(statement)).one()


async def set_lockout(
    conn: AsyncConnection,
    *,
    scope: str,
    subject: str,
    failures: int,
    window_start: datetime | None,
    locked_until: datetime | None,
) -> None:
    """Store a counter claimed by this transaction."""
    await conn.execute(
        update(onsite_lockout)
        .where(onsite_lockout.c.scope == scope, onsite_lockout.c.subject == subject)
        .values(failures=failures, window_start=window_start, locked_until=locked_until)
    )


async def lockouts_until(
    conn: AsyncConnection, *, keys: list[tuple[str, str]], now: datetime
) -> datetime | None:
    """The latest end of a lock in force among the counters ``keys`` (scope,
    subject), or None when none of them is locked."""
    conditions = [
        (onsite_lockout.c.scope == scope) & (onsite_lockout.c.subject == subject)
        for scope, subject in keys
    ]
    query = select(func.max(onsite_lockout.c.locked_until)).where(
        or_(*conditions), onsite_lockout.c.locked_until > now
    )
    value = (await conn.execute(query)).scalar_one_or_none()
    return value if isinstance(value, datetime) else None


async def purge_lockouts(
    conn: AsyncConnection, *, window_started_before: datetime, now: datetime
) -> int:
    """Delete counters that no longer count anything: no lock in force and no
    failure within the last lock period. Returns how many went."""
    result = await conn.execute(
        delete(onsite_lockout).where(
            or_(onsite_lockout.c.locked_until.is_(None), onsite_lockout.c.locked_until <= now),
            or_(
                onsite_lockout.c.window_start.is_(None),
                onsite_lockout.c.window_start < window_started_before,
            ),
        )
    )
    return int(result.rowcount or 0)


async def failures_of(
    conn: AsyncConnection, *, keys: list[tuple[str, str]], since: datetime
) -> int:
    """The most failures any of the counters ``keys`` holds in a window that
    started after ``since`` (0 when none)."""
    conditions = [
        (onsite_lockout.c.scope == scope) & (onsite_lockout.c.subject == subject)
        for scope, subject in keys
    ]
    query = select(func.max(onsite_lockout.c.failures)).where(
        or_(*conditions), onsite_lockout.c.window_start > since
    )
    value = (await conn.execute(query)).scalar_one_or_none()
    return int(value or 0)


async def clear_lockout(conn: AsyncConnection, *, scope: str, subject: str) -> None:
    """Forget a counter (a success clears its failures)."""
    await conn.execute(
        delete(onsite_lockout).where(
            onsite_lockout.c.scope == scope, onsite_lockout.c.subject == subject
        )
    )
