"""SQL for stamps and their ledger. Builds and runs statements; never commits."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    Row,
    bindparam,
    case,
    delete,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.dml import ReturningInsert
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from stampbook.db.schema import card, stamp, stamp_event

# The card columns a stamp's view needs, by the labels the renderer reads.
_CARD_VIEW_COLUMNS = (
    "card_nm",
    "card_ttl",
    "max_stamps",
    "url",
    "stamp_img_url",
    "onsite_yn",
    "onsite_pwd",
    "min_interval_sec",
    "auto_renew_yn",
    "max_adds_per_day",
    "suspicious_adds_per_day",
)
_STAMP_VIEW_COLUMNS = (
    "stamp_idx",
    "account_idx",
    "card_idx",
    "token",
    "domain",
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
    "last_add_ms",
    "pin_hash",
    "pin_failures",
    "pin_locked_until",
    "day_ymd",
    "day_adds",
    "next_stamp_idx",
)

_owner = card.alias("owner_card")


def _view_returning() -> list[ColumnElement[Any]]:
    """Stamp columns plus the card's, as correlated subqueries (SQLite's RETURNING
    may not name a joined table, but may hold subqueries)."""
    columns: list[ColumnElement[Any]] = [stamp.c[name] for name in _STAMP_VIEW_COLUMNS]
    for name in _CARD_VIEW_COLUMNS:
        columns.append(
            select(_owner.c[name])
            # Spelled out: in RETURNING, SQLAlchemy would leave it unqualified
            # ("card_idx"), which the card alias makes ambiguous.
            .where(_owner.c.card_idx == literal_column("stamp.card_idx"))
            .scalar_subquery()
            .label(name)
        )
    return columns


_VIEW_RETURNING = _view_returning()
_VIEW_SELECT = select(
    *(stamp.c[name] for name in _STAMP_VIEW_COLUMNS),
    *(card.c[name] for name in _CARD_VIEW_COLUMNS),
).select_from(stamp.join(card, card.c.card_idx == stamp.c.card_idx))


def _usable_today(
    today: date | ColumnElement[Any], columns: ReadOnlyColumnCollection[str, Any] = stamp.c
) -> list[ColumnElement[bool]]:
    # ``columns``: the stamp's, or a copy's with the same names (the stats' rollups).
    return [
        columns.active_yn == "Y",
        columns.use_yn == "N",
        columns.strt_ymd <= today,
        columns.end_ymd >= today,
    ]


async def insert_stamp(conn: AsyncConnection, values: dict[str, Any]) -> Row[Any]:
    """Insert a stamp; returns its view row."""
    result = await conn.execute(insert(stamp).values(**values).returning(*_VIEW_RETURNING))
    return result.one()


# The hot paths' statements are built once, with bound parameters, rather than
# per call: SQLAlchemy then reuses their cache key (memoised on the statement
# object) and compiled form instead of rebuilding and re-hashing the whole
# expression tree on every request. The SQL sent is the same.
VIEW_BY_IDX = _VIEW_SELECT.where(
    stamp.c.stamp_idx == bindparam("p_stamp_idx"),
    stamp.c.account_idx == bindparam("p_account_idx"),
)
VIEW_BY_IDX_FOR_UPDATE = VIEW_BY_IDX.with_for_update(of=stamp)

# ``p_delta`` stamps at once: 1 for the API's add, a receipt code's worth for a claim.
_DELTA = bindparam("p_delta", type_=Integer)
_TODAY = bindparam("p_today", type_=Date)
# The stamps added today so far: the counter belongs to ``day_ymd`` only.
_ADDS_TODAY = case((stamp.c.day_ymd == _TODAY, stamp.c.day_adds), else_=0)

ADD_ONE = (
    update(stamp)
    .where(
        stamp.c.stamp_idx == bindparam("p_stamp_idx"),
        stamp.c.account_idx == bindparam("p_account_idx"),
        card.c.card_idx == stamp.c.card_idx,
        *_usable_today(_TODAY),
        stamp.c.stamps + _DELTA <= stamp.c.max_stamps,
        or_(
            card.c.min_interval_sec <= 0,
            stamp.c.last_add_ms.is_(None),
            stamp.c.last_add_ms + card.c.min_interval_sec * 1000 <= bindparam("p_now_ms"),
        ),
        or_(card.c.max_adds_per_day <= 0, card.c.max_adds_per_day >= _ADDS_TODAY + _DELTA),
    )
    .values(
        stamps=stamp.c.stamps + _DELTA,
        last_add_ms=bindparam("p_now_ms"),
        day_ymd=_TODAY,
        day_adds=_ADDS_TODAY + _DELTA,
    )
    .returning(*_VIEW_RETURNING)
)

REMOVE_ONE = (
    update(stamp)
    .where(
        stamp.c.stamp_idx == bindparam("p_stamp_idx"),
        stamp.c.account_idx == bindparam("p_account_idx"),
        stamp.c.use_yn == "N",
        stamp.c.stamps > 0,
    )
    .values(stamps=stamp.c.stamps - 1)
    .returning(*_VIEW_RETURNING)
)

# The ledger's action names.
ACTION_CREATE = "CREATE"
ACTION_ADD = "ADD"
ACTION_REMOVE = "REMOVE"
ACTION_UPDATE = "UPDATE"
ACTION_USE = "USE"

# Bound parameters are named ``p_`` + the value they carry (``p_now``,
# ``p_stamp_idx``), the same name in every statement, so that one dict of
# values fills any of them and any composition of them (stamps/hot_path.py).
_EVENT_VALUES = {
    "account_idx": "p_account_idx",
    "stamp_idx": "p_stamp_idx",
    "card_idx": "p_card_idx",
    "action": "p_action",
    "stamps_before": "p_stamps_before",
    "stamps_after": "p_stamps_after",
    "source": "p_source",
    "key_idx": "p_key_idx",
    "user_idx": "p_user_idx",
    "idempotency_key": "p_idem_key",
    "reg_ymdt": "p_now",
    "code_idx": "p_code_idx",
}


def insert_event_from(changed: FromClause | None = None) -> ReturningInsert[Any]:
    """The ledger row of one change, RETURNING its ``event_idx``: every value
    bound, or, given ``changed`` (a conditional UPDATE … RETURNING as a CTE),
    the stamp, its card and the counts taken from that row, the count before
    being the one after minus ``p_delta``."""
    values: dict[str, ColumnElement[Any]] = {
        column: bindparam(name, type_=stamp_event.c[column].type)
        for column, name in _EVENT_VALUES.items()
    }
    row = select(*values.values())
    if changed is not None:
        values.update(
            stamp_idx=changed.c.stamp_idx,
            card_idx=changed.c.card_idx,
            stamps_before=changed.c.stamps - bindparam("p_delta", type_=Integer),
            stamps_after=changed.c.stamps,
        )
        row = select(*values.values()).select_from(changed)
    return insert(stamp_event).from_select(list(values), row).returning(stamp_event.c.event_idx)


INSERT_EVENT = insert_event_from()


async def view(
    conn: AsyncConnection, *, account_idx: int, stamp_idx: int, for_update: bool = False
) -> Row[Any] | None:
    """The stamp with its card, or None when not in this account."""
    query = VIEW_BY_IDX_FOR_UPDATE if for_update else VIEW_BY_IDX
    params = {"p_stamp_idx": stamp_idx, "p_account_idx": account_idx}
    return (await conn.execute(query, params)).first()


async def view_by_token(
    conn: AsyncConnection, *, token: str, for_update: bool = False
) -> Row[Any] | None:
    """The stamp behind a page token, with its card (locked for this transaction
    with ``for_update``, as the page's on-site actions need)."""
    query = _VIEW_SELECT.where(stamp.c.token == token)
    if for_update:
        query = query.with_for_update(of=stamp)
    return (await conn.execute(query)).first()


async def add_one(
    conn: AsyncConnection, *, account_idx: int, stamp_idx: int, today: date, now_ms: int
) -> Row[Any] | None:
    """Add one stamp if, and only if, every rule allows it: one conditional UPDATE.

    Returns the stamp's view after the add, or None when a rule refused (or no
    such stamp); nothing changed then.
    """
    params = {
        "p_stamp_idx": stamp_idx,
        "p_account_idx": account_idx,
        "p_today": today,
        "p_now_ms": now_ms,
        "p_delta": 1,
    }
    return (await conn.execute(ADD_ONE, params)).first()


async def remove_one(conn: AsyncConnection, *, account_idx: int, stamp_idx: int) -> Row[Any] | None:
    """Take one stamp back unless redeemed or at zero; the view after, or None."""
    params = {"p_stamp_idx": stamp_idx, "p_account_idx": account_idx}
    return (await conn.execute(REMOVE_ONE, params)).first()


async def mark_used(
    conn: AsyncConnection, *, account_idx: int, stamp_idx: int, today: date
) -> Row[Any] | None:
    """Redeem a complete, usable stamp: one conditional UPDATE; the view after, or None."""
    statement = (
        update(stamp)
        .where(
            stamp.c.stamp_idx == stamp_idx,
            stamp.c.account_idx == account_idx,
            card.c.card_idx == stamp.c.card_idx,
            *_usable_today(today),
            stamp.c.stamps >= stamp.c.max_stamps,
        )
        .values(use_yn="Y")
        .returning(*_VIEW_RETURNING)
    )
    return (await conn.execute(statement)).first()


async def update_fields(
    conn: AsyncConnection, *, account_idx: int, stamp_idx: int, values: dict[str, Any]
) -> Row[Any]:
    """Set columns of a stamp already locked by this transaction; the view after."""
    statement = (
        update(stamp)
        .where(stamp.c.stamp_idx == stamp_idx, stamp.c.account_idx == account_idx)
        .values(**values)
        .returning(*_VIEW_RETURNING)
    )
    return (await conn.execute(statement)).one()


async def delete_stamp(conn: AsyncConnection, *, account_idx: int, stamp_idx: int) -> bool:
    """Delete a stamp (its events go with it, by cascade)."""
    result = await conn.execute(
        delete(stamp).where(stamp.c.stamp_idx == stamp_idx, stamp.c.account_idx == account_idx)
    )
    return bool(result.rowcount)


async def insert_event(conn: AsyncConnection, values: dict[str, Any]) -> int:
    """Append a ledger row (``INSERT_EVENT``'s ``p_`` values); returns its eventIdx."""
    return int((await conn.execute(INSERT_EVENT, values)).scalar_one())


async def list_views(
    conn: AsyncConnection,
    *,
    account_idx: int,
    card_idx: int | None,
    user_id: str | None,
    active_yn: str | None,
    use_yn: str | None,
    limit: int,
    before_idx: int | None,
) -> list[Row[Any]]:
    """A page of stamps, newest first, filtered; one more row than ``limit`` tells
    whether another page follows."""
    query = _VIEW_SELECT.where(stamp.c.account_idx == account_idx)
    if card_idx is not None:
        query = query.where(stamp.c.card_idx == card_idx)
    if user_id is not None:
        query = query.where(stamp.c.user_id == user_id)
    if active_yn is not None:
        query = query.where(stamp.c.active_yn == active_yn)
    if use_yn is not None:
        query = query.where(stamp.c.use_yn == use_yn)
    if before_idx is not None:
        query = query.where(stamp.c.stamp_idx < before_idx)
    query = query.order_by(stamp.c.stamp_idx.desc()).limit(limit + 1)
    return list((await conn.execute(query)).all())


async def history(
    conn: AsyncConnection, *, account_idx: int, stamp_idx: int, limit: int, before_idx: int | None
) -> list[Row[Any]]:
    """A page of a stamp's ledger, newest first (``limit + 1`` rows at most)."""
    query = select(stamp_event).where(
        stamp_event.c.stamp_idx == stamp_idx, stamp_event.c.account_idx == account_idx
    )
    if before_idx is not None:
        query = query.where(stamp_event.c.event_idx < before_idx)
    query = query.order_by(stamp_event.c.event_idx.desc()).limit(limit + 1)
    return list((await conn.execute(query)).all())


async def exists(conn: AsyncConnection, *, account_idx: int, stamp_idx: int) -> bool:
    """True when the stamp exists in this account."""
    query = select(stamp.c.stamp_idx).where(
        stamp.c.stamp_idx == stamp_idx, stamp.c.account_idx == account_idx
    )
    return (await conn.execute(query)).first() is not None


async def lock_card_stamps(conn: AsyncConnection, *, card_idx: int) -> None:
    """Lock every stamp of a card (PostgreSQL; SQLite's writer lock already
    covers them), waiting for adds in flight to commit."""
    if conn.dialect.name == "postgresql":
        await conn.execute(
            select(stamp.c.stamp_idx).where(stamp.c.card_idx == card_idx).with_for_update()
        )


async def set_card_maximum(conn: AsyncConnection, *, card_idx: int, max_stamps: int) -> None:
    """Copy a card's new maxStamps onto its stamps."""
    await conn.execute(
        update(stamp).where(stamp.c.card_idx == card_idx).values(max_stamps=max_stamps)
    )
