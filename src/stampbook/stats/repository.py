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

from sqlalchemy import BigInteger, Select, and_, case, func, select, text
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


@asynccontextmanager
async def one_snapshot(conn: AsyncConnection) -> AsyncIterator[None]:
    """Run the block's reads on one snapshot, so that the watermark and the
    rollups it covers are read as of one moment (a fold committing between
    two statements would otherwise count its rows twice or not at all).
    SQLite's read is one deferred transaction already; PostgreSQL's reads
    run in autocommit (``kit/db.py``), so a read-only REPEATABLE READ
    transaction is opened around them."""
    if conn.dialect.name != "postgresql":
        yield
        return
    await conn.execute(text("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
    try:
        yield
    except BaseException:
        await conn.execute(text("ROLLBACK"))
        raise
    await conn.execute(text("COMMIT"))


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


def after(folded_idx: int) -> list[ColumnElement[bool]]:
    """The ledger rows the rollups do not hold: those after the watermark
    (none is left out while nothing is folded)."""
    return [stamp_event.c.event_idx > folded_idx] if folded_idx else []


def slot_of(column: ColumnElement[Any]) -> ColumnElement[int]:
    """The 15-minute slot of a stored timestamp."""
    return (epoch_seconds(column) // SLOT_SECONDS).label("slot")


def slot_counts_query(
    conditions: Sequence[ColumnElement[bool]], *keys: ColumnElement[Any]
) -> Select[Any]:
    """Per 15-minute slot (``slot``: seconds since 1970 // 900) and ``keys``:
    how many ADD, REMOVE, CREATE and USE events, and how many completions,
    of the events that meet ``conditions`` (the live read's range, or the
    rows a fold adds to the rollups)."""
    slot = slot_of(stamp_event.c.reg_ymdt)
    columns = [
        _count_where(stamp_event.c.action == action).label(action.lower()) for action in ACTIONS
    ]
    return (
        select(*keys, slot, *columns, _count_where(completes_event).label("completed"))
        .select_from(stamp_event.join(card, card.c.card_idx == stamp_event.c.card_idx))
        .where(*conditions)
        .group_by(*keys, slot)
    )


def completion_ages_query(
    conditions: Sequence[ColumnElement[bool]], *keys: ColumnElement[Any]
) -> Select[Any]:
    """The completions among the events that meet ``conditions``, counted by
    ``keys`` and whole days (``days``) from their stamp's creation to the
    completing event (``completions``)."""
    days = (
        (epoch_seconds(stamp_event.c.reg_ymdt) - epoch_seconds(stamp.c.reg_ymdt)) // DAY_SECONDS
    ).label("days")
    return (
        select(*keys, days, func.count().label("completions"))
        .select_from(
            stamp_event.join(card, card.c.card_idx == stamp_event.c.card_idx).join(
                stamp, stamp.c.stamp_idx == stamp_event.c.stamp_idx
            )
        )
        .where(*conditions, completes_event)
        .group_by(*keys, days)
    )


def adders_query(conditions: Sequence[ColumnElement[bool]]) -> Select[Any]:
    """The ADDs among the events that meet ``conditions``, counted by account,
    slot, card and their stamp's current userId (what a fold keeps)."""
    keys = (stamp_event.c.account_idx, slot_of(stamp_event.c.reg_ymdt), stamp.c.user_id)
    return (
        select(*keys, stamp_event.c.card_idx, func.count().label("adds"))
        .select_from(stamp_event.join(stamp, stamp.c.stamp_idx == stamp_event.c.stamp_idx))
        .where(*conditions, stamp_event.c.action == stamps_repo.ACTION_ADD)
        .group_by(*keys, stamp_event.c.card_idx)
    )


async def slot_counts(
    conn: AsyncConnection,
    *,
    account_idx: int,
    start: datetime,
    end: datetime,
    card_idx: int | None,
    folded_idx: int = 0,
) -> Sequence[Any]:
    """Per slot, the counts of the range's events after ``folded_idx``."""
    conditions = [*_in_range(account_idx, start, end, card_idx), *after(folded_idx)]
    rows: Sequence[Any] = (await conn.execute(slot_counts_query(conditions))).all()
    return rows


async def completion_ages(
    conn: AsyncConnection,
    *,
    account_idx: int,
    start: datetime,
    end: datetime,
    card_idx: int | None,
    folded_idx: int = 0,
) -> Sequence[Any]:
    """The range's completions after ``folded_idx``, counted by whole days
    (``days``) from their stamp's creation to the completing event."""
    conditions = [*_in_range(account_idx, start, end, card_idx), *after(folded_idx)]
    rows: Sequence[Any] = (await conn.execute(completion_ages_query(conditions))).all()
    return rows


def added_user_ids(
    *, account_idx: int, start: datetime, end: datetime, card_idx: int | None, folded_idx: int
) -> Select[Any]:
    """The userIds (the stamp's current userId: the ledger does not copy it)
    of the stamps with an ADD in the range after ``folded_idx``."""
    added = (
        select(stamp_event.c.stamp_idx)
        .where(
            *_in_range(account_idx, start, end, card_idx),
            *after(folded_idx),
            stamp_event.c.action == stamps_repo.ACTION_ADD,
        )
        .scalar_subquery()
    )
    return select(stamp.c.user_id).where(
        stamp.c.account_idx == account_idx, stamp.c.stamp_idx.in_(added)
    )


async def active_customers(
    conn: AsyncConnection, *, account_idx: int, start: datetime, end: datetime, card_idx: int | None
) -> int:
    """How many distinct userIds had at least one ADD in the range."""
    users = added_user_ids(
        account_idx=account_idx, start=start, end=end, card_idx=card_idx, folded_idx=0
    ).subquery()
    query = select(func.count(func.distinct(users.c.user_id)))
    return int((await conn.execute(query)).scalar_one())


def usable_stamps(account_idx: int, card_idx: int | None) -> list[ColumnElement[bool]]:
    """Today's active, unredeemed stamps of the account (or of one card): those
    the customer can still add to or redeem (search's ``active`` and ``complete``)."""
    usable = [STATE_SQL["active"] | STATE_SQL["complete"], stamp.c.account_idx == account_idx]
    if card_idx is not None:
        usable.append(stamp.c.card_idx == card_idx)
    return usable


async def progress(
    conn: AsyncConnection, *, account_idx: int, today: date, card_idx: int | None
) -> Sequence[Any]:
    """Today's usable stamps (``usable_stamps``), counted by their count."""
    query = (
        select(stamp.c.stamps, func.count().label("holders"))
        .where(*usable_stamps(account_idx, card_idx))
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
