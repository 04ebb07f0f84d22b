"""The add, the remove and the validate on the driver's own connection: the
lunch-rush paths.

An accepted add is the service's most frequent write, and the remove its
undo. ``try_change`` does either whole (Idempotency-Key row with its stored
response, conditional UPDATE, ledger row, outbox messages) in the fewest
steps each database allows, with the **same** Core statements the general
path runs (``repository.ADD_ONE``/``REMOVE_ONE``, ``repository.INSERT_EVENT``,
``outbox.ENQUEUE``, ``idempotency.CLAIM``):

- PostgreSQL: **one statement**, those statements composed as data-modifying
  CTEs (``Update.cte``, ``insert().from_select()``, ``add_cte``), run in
  autocommit: one round trip and one implicit transaction, and the stamp's
  row lock is held for that statement only. Its outbox rows hold the
  change's record (``outbox.change_record_sql``), rendered at delivery.
- SQLite: the same statements one after another inside one ``BEGIN
  IMMEDIATE`` transaction on the inline ``sqlite3`` connection.

It only ever takes the path where the change is accepted. When a rule
refuses, the key already exists (a retry, a concurrent twin, a reused key)
or the database reports a deadlock, it changes nothing and returns False,
and the service answers through the general path, which claims the key
first, replays, or diagnoses the refusal. Exactly-once holds on both: on
PostgreSQL the key row is inserted by the same statement as the UPDATE, so a
twin's committed key makes the whole statement fail on the unique index and
roll back; on SQLite, writers are serialised and the key is claimed before
the UPDATE.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import Integer, String, and_, bindparam, column, or_, select, values
from sqlalchemy.sql.dml import ReturningUpdate

from stampbook.kit import idempotency
from stampbook.kit.context import CallContext
from stampbook.kit.db import Database
from stampbook.kit.driver import DriverStatement
from stampbook.kit.envelope import OK_NULL_BODY
from stampbook.stamps import repository as repo
from stampbook.stamps import rules
from stampbook.stamps.views import usable_view
from stampbook.wallet import outbox as wallet_outbox
from stampbook.webhooks import outbox

# The response an accepted change stores for replay, as Call.write stores it.
CHANGED_STATUS = 200
CHANGED_BODY = OK_NULL_BODY

# An event of a change, and when it is sent: None always, else a condition on
# the stamp's row after the change, written once for Python rows and SQL
# columns alike (``rules.completes``).
Event = tuple[str, Callable[[Any], Any] | None]


@dataclass(frozen=True, slots=True)
class Change:
    """One stamp verb the hot path can do whole."""

    action: str
    delta: int  # stamps after minus stamps before
    update: ReturningUpdate[Any]  # the conditional UPDATE … RETURNING the view
    events: tuple[Event, ...]

    def events_after(self, after: Any) -> tuple[str, ...]:
        """The outbox events of this change, given the stamp's view row after it."""
        return tuple(kind for kind, when in self.events if when is None or when(after))


ADD = Change(
    action=repo.ACTION_ADD,
    delta=1,
    update=repo.ADD_ONE,
    events=(
        (outbox.STAMP_ADDED, None),
        (outbox.STAMP_COMPLETED, lambda row: rules.completes(row.stamps, row.max_stamps)),
        (
            outbox.STAMP_SUSPICIOUS,
            lambda row: rules.suspicious(row.day_adds, row.suspicious_adds_per_day),
        ),
    ),
)
REMOVE = Change(
    action=repo.ACTION_REMOVE,
    delta=-1,
    update=repo.REMOVE_ONE,
    events=((outbox.STAMP_REMOVED, None),),
)


def _prefix_param(position: int) -> str:
    return f"p_msg_prefix_{position}"


def one_statement(change: Change, *, wallet: bool = False) -> DriverStatement:
    """A whole accepted change as one PostgreSQL statement, composed of the
    general path's own statements: the conditional UPDATE as the CTE ``upd``,
    then, once per row it returns, the key row with its stored response, the
    ledger row, and one outbox message per event that applies, for every
    matching endpoint. The statement's result is the count after, or no row
    when a rule refused (then nothing was written). With ``wallet`` (a wallet
    is configured) the wallet's pass touch, pushes and syncs are CTEs too
    (``wallet.outbox.composed``); without, the statement is exactly as before."""
    upd = change.update.cte("upd")
    claimed = idempotency.claim_from(upd).cte("claimed")
    ledger = repo.insert_event_from(upd).cte("ledger")
    kind = values(
        column("position", Integer),
        column("event_type", String),
        column("msg_prefix", String),
        name="kind",
    ).data(
        [
            (position, event_type, bindparam(_prefix_param(position), type_=String))
            for position, (event_type, _) in enumerate(change.events, start=1)
        ]
    )
    applies = or_(
        *(
            kind.c.position == position
            if when is None
            else and_(kind.c.position == position, when(upd.c))
            for position, (_, when) in enumerate(change.events, start=1)
        )
    )
    messages = outbox.fan_out(
        stamp_idx=upd.c.stamp_idx,
        card_idx=upd.c.card_idx,
        event_type=kind.c.event_type,
        msg_prefix=kind.c.msg_prefix,
        payload=outbox.change_record_sql(
            upd.c,
            event_type=kind.c.event_type,
            stamps_before=upd.c.stamps - bindparam("p_delta", type_=Integer),
            event_idx=ledger.c.event_idx,
        ),
        froms=(upd, ledger, kind),
        where=(applies,),
        # The ids follow this order: a stamp's "added" is delivered before its "completed".
        order_by=(kind.c.position,),
    ).cte("messages")
    ctes = (claimed, ledger, messages)
    if wallet:
        ctes += wallet_outbox.composed(upd.c.stamp_idx, (upd,))
    return DriverStatement(select(upd.c.stamps).add_cte(*ctes), name="Changed")


_POSTGRESQL = {
    (change.action, wallet): one_statement(change, wallet=wallet)
    for change in (ADD, REMOVE)
    for wallet in (False, True)
}
_UPDATE = {
    change.action: DriverStatement(change.update, name="StampView") for change in (ADD, REMOVE)
}
_CLAIM_SQLITE = DriverStatement(idempotency.CLAIM["sqlite"])
_INSERT_EVENT = DriverStatement(repo.INSERT_EVENT, name="Event")
_ENQUEUE = DriverStatement(outbox.ENQUEUE)
_VIEW_BY_IDX = DriverStatement(repo.VIEW_BY_IDX, name="StampView")
_HAS_RECEIVER = DriverStatement(outbox.HAS_RECEIVER)
_WALLET = tuple(DriverStatement(statement) for statement in wallet_outbox.STATEMENTS)


class _NotChanged(Exception):
    """The change was not accepted here: roll back and let the general path answer."""


def change_values(
    ctx: CallContext,
    change: Change,
    *,
    stamp_idx: int,
    fingerprint: str | None,
    delta: int | None = None,
    code_idx: int | None = None,
) -> dict[str, Any]:
    """The ``p_`` values of one change, for any of its statements: ``delta``
    stamps (the change's own by default; a receipt code may be worth more),
    ``code_idx`` the code a claim recorded on the ledger row."""
    return {
        "p_stamp_idx": stamp_idx,
        "p_account_idx": ctx.account_idx,
        "p_now_ms": ctx.now_ms,
        "p_today": ctx.today,
        "p_now": ctx.now_naive,
        "p_idem_key": ctx.idempotency_key,
        "p_fingerprint": fingerprint,
        "p_status_code": CHANGED_STATUS,
        "p_response_body": CHANGED_BODY,
        "p_source": ctx.source,
        "p_key_idx": ctx.key_idx,
        "p_user_idx": ctx.user_idx,
        "p_action": change.action,
        "p_delta": change.delta if delta is None else delta,
        "p_code_idx": code_idx,
    }


async def try_change(
    db: Database,
    ctx: CallContext,
    change: Change,
    *,
    stamp_idx: int,
    fingerprint: str | None,
    delta: int | None = None,
) -> bool:
    """Do ``change`` to one stamp (``delta`` stamps, the change's own by
    default), with its key row, ledger row and outbox messages, if every rule
    allows it now; True when it did. False changes nothing."""
    if not db.has_driver_path:
        return False
    params = change_values(ctx, change, stamp_idx=stamp_idx, fingerprint=fingerprint, delta=delta)
    if db.is_sqlite:
        try:
            async with db.driver_write() as conn:
                await _change_sqlite(conn, ctx, change, params)
        except _NotChanged:
            return False
        return True
    params.update(
        {_prefix_param(n): outbox.message_prefix() for n in range(1, len(change.events) + 1)},
        p_public_url=ctx.public_url,
        p_zone=ctx.zone.key,
    )
    try:
        async with db.driver() as conn:
            statement = _POSTGRESQL[change.action, ctx.wallet]
            return await statement.first(conn, params) is not None
    except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError):
        # The key exists (or a twin holding it waits for this row): the whole
        # statement rolled back; the general path replays or refuses.
        return False


async def _change_sqlite(
    conn: sqlite3.Connection, ctx: CallContext, change: Change, params: dict[str, Any]
) -> None:
    if ctx.idempotency_key is not None and await _CLAIM_SQLITE.first(conn, params) is None:
        raise _NotChanged
    after = await _UPDATE[change.action].first(conn, params)
    if after is None:
        raise _NotChanged
    stamps_before = after.stamps - params["p_delta"]
    params.update(
        p_card_idx=after.card_idx, p_stamps_before=stamps_before, p_stamps_after=after.stamps
    )
    event = await _INSERT_EVENT.first(conn, params)
    assert event is not None
    # The wallet's pass touch, pushes and syncs (wallet/outbox.py) come first:
    # nothing below may return before them.
    if ctx.wallet:
        for statement in _WALLET:
            await statement.run(conn, params)
    # An account without an endpoint (most) gets no record rendered for nobody;
    # asked inside this transaction, so an endpoint added before it counts.
    if await _HAS_RECEIVER.first(conn, params) is None:
        return
    for event_type in change.events_after(after):
        await _ENQUEUE.run(
            conn,
            outbox.enqueue_values(
                ctx, after, event_type, stamps_before=stamps_before, event_idx=event.event_idx
            ),
        )


async def validate(db: Database, ctx: CallContext, *, stamp_idx: int) -> dict[str, Any]:
    """validate's result: the stamp when it exists, is active, within its dates
    and not redeemed (the same rules and view as ``service.validate``)."""
    async with db.driver() as conn:
        row = await _VIEW_BY_IDX.first(
            conn, {"p_stamp_idx": stamp_idx, "p_account_idx": ctx.account_idx}
        )
    return usable_view(ctx, row)
