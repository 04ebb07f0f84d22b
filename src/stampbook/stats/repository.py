"""SQL for the statistics and exports: reads only, never commits.

Every statistic is read from the ledger (``stamp_event``) between two UTC
instants, the range's first local midnight and the one after its last day;
the service turns UTC into the account's days. Two portable expressions do
the arithmetic both databases need:

- ``epoch_seconds(column)``: a stored (naive UTC) timestamp as whole seconds
  since 1970, so that events group into 15-minute slots (every time zone in
  use today is a whole number of quarter hours from UTC, so a slot never
  straddles two local days) and a completion's age is a subtraction.
- ``completes_event``: the event brought its stamp to the maximum of the card
  it names: before it the count was below the maximum, after it not. The card
  is the one the event names (``stamp_event.card_idx``), so the events of a
  stamp moved between cards count for the card each happened on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, and_, case, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from stampbook.db.schema import card, stamp, stamp_event
from stampbook.stamps import repository as stamps_repo
from stampbook.stamps import rules
from stampbook.stamps.search import STATE_SQL

SLOT_SECONDS = 900
DAY_SECONDS = 86400
ACTIONS = (
    stamps_repo.ACTION_ADD,
    stamps_repo.ACTION_REMOVE,
    stamps_repo.ACTION_CREATE,
    stamps_repo.ACTION_USE,
)


class epoch_seconds(FunctionElement[int]):
    """Whole seconds since 1970 of a naive UTC timestamp column."""

    type = BigInteger()
    inherit_cache = True


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(column, **kw)}) AS BIGINT)"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    return f"CAST(strftime('%s', {compiler.process(column, **kw)}) AS INTEGER)"


_max = card.c.max_stamps
completes_event: ColumnElement[bool] = and_(
    stamp_event.c.action.in_((stamps_repo.ACTION_ADD, stamps_repo.ACTION_UPDATE)),
    stamp_event.c.stamps_before < _max,
    rules.completes(stamp_event.c.stamps_after, _max),
)


# Memory for the statistics' hashes and sorts, for their statements only:
# with the default 4 MB the active-customer count of a month of a large
# account (about 300,000 stamps) spilled its hash and sort to disk.
STATS_WORK_MEM = "64MB"


@asynccontextmanager
async def roomy_sorts(conn: AsyncConnection) -> AsyncIterator[None]:
    """Let the statistics hash and sort in memory (PostgreSQL; SQLite has no
    such setting). Reads run in autocommit there (``kit/db.py``), where
    ``SET LOCAL`` would be a no-op, so the session's setting is raised and
    put back before the pooled connection is handed on."""
    if conn.dialect.name != "postgresql":
        yield
        return
    await conn.execute(text(f"SET work_mem = '{STATS_WORK_MEM}'"))
    try:
        yield
    finally:
        await conn.execute(text("RESET work_mem"))


def _in_range(
    account_idx: int, start: datetime, end: datetime, card_idx: int | None
) -> list[ColumnElement[bool]]:
    """The account's events in [start, end) UTC, optionally of one card."""
    conditions = [
        stamp_event.c.account_idx == account_idx,
        stamp_event.c.reg_ymdt >= start,
        stamp_event.c.reg_ymdt < end,
    ]
    if card_idx is not None:
        conditions.append(stamp_event.c.card_idx == card_idx)
    return conditions


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def slot_counts(
    conn: AsyncConnection, *, account_idx: int, start: datetime, end: datetime, card_idx: int | None
) -> Sequence[Any]:
    """Per 15-minute slot (``slot``: seconds since 1970 // 900): how many ADD,
    REMOVE, CREATE and USE events, and how many completions."""
    slot = (epoch_seconds(stamp_event.c.reg_ymdt) // SLOT_SECONDS).label("slot")
    columns = [
        _count_where(stamp_event.c.action == action).label(action.lower()) for action in ACTIONS
    ]
    query = (
        select(slot, *columns, _count_where(completes_event).label("completed"))
        .select_from(stamp_event.join(card, card.c.card_idx == stamp_event.c.card_idx))
        .where(*_in_range(account_idx, start, end, card_idx))
        .group_by(slot)
    )
    return (await conn.execute(query)).all()


async def completion_ages(
    conn: AsyncConnection, *, account_idx: int, start: datetime, end: datetime, card_idx: int | None
) -> Sequence[Any]:
    """The completions in the range, counted by whole days (``days``) from
    their stamp's creation to the completing event (``completions``)."""
    days = (
        (epoch_seconds(stamp_event.c.reg_ymdt) - epoch_seconds(stamp.c.reg_ymdt)) // DAY_SECONDS
    ).label("days")
    query = (
        select(days, func.count().label("completions"))
        .select_from(
            stamp_event.join(card, card.c.card_idx == stamp_event.c.card_idx).join(
                stamp, stamp.c.stamp_idx == stamp_event.c.stamp_idx
            )
        )
        .where(*_in_range(account_idx, start, end, card_idx), completes_event)
        .group_by(days)
    )
    return (await conn.execute(query)).all()


async def active_customers(
    conn: AsyncConnection, *, account_idx: int, start: datetime, end: datetime, card_idx: int | None
) -> int:
    """How many distinct userIds had at least one ADD in the range (the
    stamp's current userId: the ledger does not copy it)."""
    added = (
        select(stamp_event.c.stamp_idx)
        .where(
            *_in_range(account_idx, start, end, card_idx),
            stamp_event.c.action == stamps_repo.ACTION_ADD,
        )
        .scalar_subquery()
    )
    query = select(func.count(func.distinct(stamp.c.user_id))).where(
        stamp.c.account_idx == account_idx, stamp.c.stamp_idx.in_(added)
    )
    return int((await conn.execute(query)).scalar_one())


async def progress(
    conn: AsyncConnection, *, account_idx: int, today: date, card_idx: int | None
) -> Sequence[Any]:
    """Today's active, unredeemed stamps (those the customer can still add to
    or redeem: search's ``active`` and ``complete``), counted by their count."""
    usable = [STATE_SQL["active"] | STATE_SQL["complete"], stamp.c.account_idx == account_idx]
    if card_idx is not None:
        usable.append(stamp.c.card_idx == card_idx)
    query = (
        select(stamp.c.stamps, func.count().label("holders"))
        .where(*usable)
        .group_by(stamp.c.stamps)
        .order_by(stamp.c.stamps)
    )
    return (await conn.execute(query, {"p_today": today})).all()


async def events_after(
    conn: AsyncConnection,
    *,
    account_idx: int,
    start: datetime,
    end: datetime,
    after_idx: int,
    limit: int,
) -> Sequence[Any]:
    """Up to ``limit`` ledger rows in [start, end) after ``after_idx``, oldest first."""
    query = (
        select(stamp_event, stamp.c.user_id)
        .select_from(stamp_event.join(stamp, stamp.c.stamp_idx == stamp_event.c.stamp_idx))
        .where(*_in_range(account_idx, start, end, None), stamp_event.c.event_idx > after_idx)
        .order_by(stamp_event.c.event_idx)
        .limit(limit)
    )
    return (await conn.execute(query)).all()


async def stamps_after(
    conn: AsyncConnection,
    *,
    account_idx: int,
    start: datetime,
    end: datetime,
    after_idx: int,
    limit: int,
) -> Sequence[Any]:
    """Up to ``limit`` stamp view rows created in [start, end) after ``after_idx``,
    oldest first (the columns ``stamps.views.render_stamp`` reads)."""
    query = (
        stamps_repo._VIEW_SELECT.where(
            stamp.c.account_idx == account_idx,
            stamp.c.reg_ymdt >= start,
            stamp.c.reg_ymdt < end,
            stamp.c.stamp_idx > after_idx,
        )
        .order_by(stamp.c.stamp_idx)
        .limit(limit)
    )
    return (await conn.execute(query)).all()
