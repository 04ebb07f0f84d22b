"""SQL for the statistics' rollups (``db/rollup_schema.py``): the watermark,
the fold's statements and the overview's reads. Never commits.

The fold adds the ledger rows a condition names to the rollups, through the
live statistics' own statements (``repository.slot_counts_query`` and its
siblings, grouped by account, slot and card as well); undoing a fold is the
same statement with every count negated. The reads add the rollups up to
the watermark to the live statements restricted to the rows after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    Select,
    String,
    bindparam,
    column,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    table,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.schema import Table

from stampbook.db.rollup_schema import (
    stats_active,
    stats_age,
    stats_fold,
    stats_progress,
    stats_slot,
    stats_stamp,
)
from stampbook.db.schema import card, stamp, stamp_event
from stampbook.stamps.repository import _usable_today
from stampbook.stats import repository as live

FOLD_ID = 1
# ``repository.slot_counts_query``'s counts; ``stats_slot`` names them n_<name>.
_SLOT_COUNTS = ("add", "remove", "create", "use", "completed")
PROGRESS_COLUMNS = ("card_idx", "stamps", "strt_ymd", "end_ymd", "active_yn", "use_yn")
_pg_activity = table(
    "pg_stat_activity",
    column("datname", String),
    column("pid", Integer),
    column("backend_type", String),
    column("xact_start", DateTime(timezone=True)),
)


# --- the watermark ------------------------------------------------------------


ROLLUPS = (stats_slot, stats_age, stats_active, stats_stamp, stats_progress)


async def unfold(conn: AsyncConnection) -> None:
    """Empty the rollups and put the watermark back to 0: the overview then
    reads the whole ledger live (tests and the bench compare against it)."""
    for rollup in ROLLUPS:
        await conn.execute(delete(rollup))
    await conn.execute(stats_fold.update().values(folded_idx=0, seen_idx=0, seen_at=None))


async def lock_watermark(conn: AsyncConnection) -> Any:
    """The watermark row, locked until the transaction ends: the fold and
    every correction of the rollups take turns on it (SQLite: its writers
    take turns already)."""
    query = select(stats_fold).where(stats_fold.c.fold_id == FOLD_ID).with_for_update()
    return (await conn.execute(query)).one()


async def folded_idx(conn: AsyncConnection) -> int:
    """The watermark as this connection's snapshot sees it."""
    query = select(stats_fold.c.folded_idx).where(stats_fold.c.fold_id == FOLD_ID)
    return int((await conn.execute(query)).scalar_one())


async def set_watermark(conn: AsyncConnection, **values: Any) -> None:
    """Move the watermark (``folded_idx``, ``seen_idx``, ``seen_at``)."""
    await conn.execute(stats_fold.update().where(stats_fold.c.fold_id == FOLD_ID).values(values))


async def observe(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """The highest event_idx visible now and, on PostgreSQL, the database's
    clock read after this statement's snapshot was taken (naive UTC)."""
    highest = func.coalesce(func.max(stamp_event.c.event_idx), 0)
    if conn.dialect.name != "postgresql":
        return int((await conn.execute(select(highest))).scalar_one()), None
    now = func.timezone("UTC", func.clock_timestamp())
    row = (await conn.execute(select(highest, now))).one()
    return int(row[0]), row[1]


async def open_since(conn: AsyncConnection, moment: datetime) -> bool:
    """True while a client transaction of this database that began at or
    before ``moment`` (naive UTC) is still open, other than this one."""
    query = select(
        exists().where(
            _pg_activity.c.datname == func.current_database(),
            _pg_activity.c.pid != func.pg_backend_pid(),
            _pg_activity.c.backend_type == "client backend",
            func.timezone("UTC", _pg_activity.c.xact_start) <= moment,
        )
    )
    return bool((await conn.execute(query)).scalar_one())


async def batch_end(conn: AsyncConnection, *, after_idx: int, upto_idx: int, rows: int) -> int:
    """The event_idx that ends a batch of at most ``rows`` ledger rows after
    ``after_idx`` (``upto_idx`` when fewer remain)."""
    batch = (
        select(stamp_event.c.event_idx)
        .where(stamp_event.c.event_idx > after_idx, stamp_event.c.event_idx <= upto_idx)
        .order_by(stamp_event.c.event_idx)
        .limit(rows)
        .subquery()
    )
    last, found = (await conn.execute(select(func.max(batch.c.event_idx), func.count()))).one()
    # Short of a full batch, the batch runs to ``upto_idx``: the ids between
    # its last row and it were never committed, and the next fold starts there.
    return int(last) if found == rows else upto_idx


# --- folding ------------------------------------------------------------------


def _insert(conn: AsyncConnection) -> Any:
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


async def _add_counts(
    conn: AsyncConnection, target: Table, query: Select[Any], counts: Sequence[str], sign: int
) -> None:
    """Add ``query``'s rows (the target's key columns, then ``counts``) times
    ``sign`` to ``target``: new keys inserted, existing ones summed."""
    rows = query.subquery()
    keys = [col.name for col in target.primary_key.columns]
    signed = select(*(rows.c[name] for name in keys), *(rows.c[name] * sign for name in counts))
    # SQLite parses ``INSERT … SELECT … ON CONFLICT`` only with a WHERE in the SELECT.
    statement = _insert(conn)(target).from_select([*keys, *counts], signed.where(literal(True)))
    statement = statement.on_conflict_do_update(
        index_elements=keys,
        set_={name: target.c[name] + statement.excluded[name] for name in counts},
    )
    await conn.execute(statement)


async def fold_events(
    conn: AsyncConnection, conditions: Sequence[ColumnElement[bool]], *, sign: int
) -> None:
    """Add (``sign`` 1) or take back (-1) the ledger rows that meet
    ``conditions`` to or from the slot counts, completion ages and adders."""
    account, card_idx = stamp_event.c.account_idx, stamp_event.c.card_idx
    slot = live.slot_of(stamp_event.c.reg_ymdt)
    counts = live.slot_counts_query(conditions, account, card_idx)
    await _add_counts(
        conn,
        stats_slot,
        _relabel(counts, {name: f"n_{name}" for name in _SLOT_COUNTS}),
        [f"n_{name}" for name in _SLOT_COUNTS],
        sign,
    )
    ages = live.completion_ages_query(conditions, account, slot, card_idx)
    await _add_counts(conn, stats_age, ages, ["completions"], sign)
    adders = live.adders_query(conditions)
    await _add_counts(conn, stats_active, adders, ["adds"], sign)
    users = adders.subquery()
    await _rechain(conn, select(users.c.account_idx, users.c.user_id).distinct())


async def _rechain(conn: AsyncConnection, users: Select[Any]) -> None:
    """For the (account, userId) pairs ``users`` names: delete their rows
    that count no ADD any more, and set each remaining row's ``prev_any``
    and ``prev_card`` (the slot of the userId's row before it)."""
    rows = stats_active.c
    pairs = tuple_(rows.account_idx, rows.user_id).in_(users)
    await conn.execute(delete(stats_active).where(pairs, rows.adds <= 0))
    before = func.lag(rows.slot)
    chain = (
        select(
            rows.account_idx,
            rows.user_id,
            rows.slot,
            rows.card_idx,
            func.coalesce(
                before.over(
                    partition_by=(rows.account_idx, rows.user_id),
                    order_by=(rows.slot, rows.card_idx),
                ),
                -1,
            ).label("prev_any"),
            func.coalesce(
                before.over(
                    partition_by=(rows.account_idx, rows.user_id, rows.card_idx),
                    order_by=rows.slot,
                ),
                -1,
            ).label("prev_card"),
        )
        .where(pairs)
        .subquery()
    )
    statement = (
        update(stats_active)
        .where(
            *(
                rows[name] == chain.c[name]
                for name in ("account_idx", "user_id", "slot", "card_idx")
            ),
            or_(rows.prev_any != chain.c.prev_any, rows.prev_card != chain.c.prev_card),
        )
        .values(prev_any=chain.c.prev_any, prev_card=chain.c.prev_card)
    )
    await conn.execute(statement)


def _relabel(query: Select[Any], names: dict[str, str]) -> Select[Any]:
    rows = query.subquery()
    return select(*(col.label(names.get(col.key, col.key)) for col in rows.c))


def _progress_groups(stamp_ids: Select[Any]) -> Select[Any]:
    keys = [stats_stamp.c.account_idx, *(stats_stamp.c[name] for name in PROGRESS_COLUMNS)]
    return (
        select(*keys, func.count().label("holders"))
        .where(stats_stamp.c.stamp_idx.in_(stamp_ids.scalar_subquery()))
        .group_by(*keys)
    )


async def refold_stamps(conn: AsyncConnection, stamp_ids: Select[Any]) -> None:
    """Read the stamps ``stamp_ids`` names again into ``stats_stamp`` and
    ``stats_progress``: their old rows' counts taken back, their rows as
    they are now (none for a deleted stamp) counted."""
    await _add_counts(conn, stats_progress, _progress_groups(stamp_ids), ["holders"], -1)
    ids = stamp_ids.scalar_subquery()
    await conn.execute(delete(stats_stamp).where(stats_stamp.c.stamp_idx.in_(ids)))
    columns = ["stamp_idx", "account_idx", *PROGRESS_COLUMNS]
    now = select(*(stamp.c[name] for name in columns)).where(stamp.c.stamp_idx.in_(ids))
    await conn.execute(stats_stamp.insert().from_select(columns, now))
    await _add_counts(conn, stats_progress, _progress_groups(stamp_ids), ["holders"], 1)


# --- the overview's reads -----------------------------------------------------


def _slots(
    target: Table, account_idx: int, slots: tuple[int, int], card_idx: int | None
) -> list[ColumnElement[bool]]:
    conditions = [
        target.c.account_idx == account_idx,
        target.c.slot >= slots[0],
        target.c.slot < slots[1],
    ]
    if card_idx is not None:
        conditions.append(target.c.card_idx == card_idx)
    return conditions


def _cards_alive(target: Table, account_idx: int) -> ColumnElement[bool]:
    # The live statements join the card: a deleted card's events count nowhere.
    return target.c.card_idx.in_(select(card.c.card_idx).where(card.c.account_idx == account_idx))


async def folded_slot_counts(
    conn: AsyncConnection, *, account_idx: int, slots: tuple[int, int], card_idx: int | None
) -> Sequence[Any]:
    """The folded counts per slot of ``slots`` (first, after last), named
    as ``repository.slot_counts`` names them."""
    sums = [func.sum(stats_slot.c[f"n_{name}"]).label(name) for name in _SLOT_COUNTS]
    query = (
        select(stats_slot.c.slot, *sums)
        .where(
            *_slots(stats_slot, account_idx, slots, card_idx),
            _cards_alive(stats_slot, account_idx),
        )
        .group_by(stats_slot.c.slot)
    )
    return (await conn.execute(query)).all()


async def folded_completion_ages(
    conn: AsyncConnection, *, account_idx: int, slots: tuple[int, int], card_idx: int | None
) -> Sequence[Any]:
    """The folded completions of ``slots`` by whole days to complete."""
    query = (
        select(stats_age.c.days, func.sum(stats_age.c.completions).label("completions"))
        .where(
            *_slots(stats_age, account_idx, slots, card_idx), _cards_alive(stats_age, account_idx)
        )
        .group_by(stats_age.c.days)
    )
    return (await conn.execute(query)).all()


async def active_customers(
    conn: AsyncConnection,
    *,
    account_idx: int,
    start: datetime,
    end: datetime,
    slots: tuple[int, int],
    card_idx: int | None,
    folded_idx: int,
) -> int:
    """Distinct userIds among the folded adders of ``slots`` (each userId's
    first row in the range: its previous row is before it) and, not among
    those, the userIds of the stamps with an ADD in the range after the
    watermark."""
    rows = stats_active.c
    in_range = _slots(stats_active, account_idx, slots, card_idx)
    previous = rows.prev_any if card_idx is None else rows.prev_card
    folded = select(func.count()).where(*in_range, previous < slots[0]).scalar_subquery()
    tail = live.added_user_ids(
        account_idx=account_idx, start=start, end=end, card_idx=card_idx, folded_idx=folded_idx
    ).subquery()
    counted = select(rows.user_id).where(*in_range, rows.user_id == tail.c.user_id)
    more = (
        select(func.count(func.distinct(tail.c.user_id))).where(~exists(counted)).scalar_subquery()
    )
    return int((await conn.execute(select(folded + more))).scalar_one())


async def tail_is_longer(
    conn: AsyncConnection, *, account_idx: int, folded_idx: int, rows: int
) -> bool:
    """True when more than ``rows`` of the account's ledger rows are after the watermark."""
    rows_after = (
        select(stamp_event.c.event_idx)
        .where(stamp_event.c.account_idx == account_idx, *live.after(folded_idx))
        .limit(rows + 1)
        .subquery()
    )
    return (
        int((await conn.execute(select(func.count()).select_from(rows_after))).scalar_one()) > rows
    )


async def progress(
    conn: AsyncConnection, *, account_idx: int, today: date, card_idx: int | None, folded_idx: int
) -> Sequence[Any]:
    """Today's usable stamps by count: the folded counts, with each stamp
    that has a ledger row after the watermark taken back as folded and
    counted as it is now."""
    changed = select(stamp_event.c.stamp_idx).where(
        stamp_event.c.account_idx == account_idx, *live.after(folded_idx)
    )
    ids = changed.scalar_subquery()
    today_: BindParameter[date] = bindparam("p_today")

    def usable(target: Table) -> list[ColumnElement[bool]]:
        found = [*_usable_today(today_, target.c), target.c.account_idx == account_idx]
        if card_idx is not None:
            found.append(target.c.card_idx == card_idx)
        return found

    parts = union_all(
        select(stats_progress.c.stamps, stats_progress.c.holders.label("n")).where(
            *usable(stats_progress)
        ),
        select(stats_stamp.c.stamps, literal(-1).label("n")).where(
            *usable(stats_stamp), stats_stamp.c.stamp_idx.in_(ids)
        ),
        select(stamp.c.stamps, literal(1).label("n")).where(
            *live.usable_stamps(account_idx, card_idx), stamp.c.stamp_idx.in_(ids)
        ),
    ).subquery()
    holders = func.sum(parts.c.n)
    query = (
        select(parts.c.stamps, holders.label("holders"))
        .group_by(parts.c.stamps)
        .having(holders > 0)
        .order_by(parts.c.stamps)
    )
    return (await conn.execute(query, {"p_today": today})).all()
