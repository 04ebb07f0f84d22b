"""The wallet's side of a stamp change, written in the change's own transaction.

A change to a stamp that has a pass marks the pass changed (``TOUCH``) and
queues one APNs push per registered device (``PUSH``) and, when the pass was
saved to Google Wallet, one object update (``SYNC``): ``INSERT … SELECT``
statements that fan out over the pass's registrations, as the webhook outbox
fans out over endpoints (webhooks/outbox.py). The one-statement add composes
the same statements over its ``upd`` CTE (``composed``); every other path
runs the bound ones (``enqueue``). A stamp without a pass matches no row.

Nothing here runs when no wallet is configured (``CallContext.wallet``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import DateTime, Integer, bindparam, insert, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert, Update

from stampbook.db.schema import wallet_job, wallet_pass, wallet_registration
from stampbook.kit.context import CallContext
from stampbook.wallet.content import snapshot_of

KIND_APNS = "apns"
KIND_GOOGLE = "google"
PENDING = "pending"
FAILED = "failed"

_NOW = bindparam("p_now", type_=DateTime)
_JOB_COLUMNS = [
    "kind",
    "pass_idx",
    "registration_idx",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
]


def touch(stamp_idx: Any, **values: Any) -> Update:
    """Mark the stamp's pass changed now (and set ``values``)."""
    return (
        update(wallet_pass)
        .where(wallet_pass.c.stamp_idx == stamp_idx)
        .values(updated_at=_NOW, **values)
    )


def _job(kind: str, registration_idx: Any) -> list[Any]:
    return [
        literal_column(f"'{kind}'"),
        wallet_pass.c.pass_idx,
        registration_idx,
        literal_column(f"'{PENDING}'"),
        literal_column("0", Integer),
        _NOW,
        _NOW,
    ]


def pushes(stamp_idx: Any, froms: Sequence[Any] = ()) -> Insert:
    """One APNs push per device registered for the stamp's pass."""
    source = (
        select(*_job(KIND_APNS, wallet_registration.c.registration_idx))
        .select_from(
            wallet_pass.join(
                wallet_registration, wallet_registration.c.pass_idx == wallet_pass.c.pass_idx
            ),
            *froms,
        )
        .where(wallet_pass.c.stamp_idx == stamp_idx)
        .order_by(wallet_registration.c.registration_idx)
    )
    return insert(wallet_job).from_select(_JOB_COLUMNS, source)


def syncs(stamp_idx: Any, froms: Sequence[Any] = ()) -> Insert:
    """One Google object update for the stamp's pass, when it was saved to Google Wallet."""
    source = (
        select(*_job(KIND_GOOGLE, literal_column("NULL")))
        .select_from(wallet_pass, *froms)
        .where(wallet_pass.c.stamp_idx == stamp_idx, wallet_pass.c.google_yn == "Y")
    )
    return insert(wallet_job).from_select(_JOB_COLUMNS, source)


def composed(stamp_idx: Any, froms: Sequence[Any]) -> tuple[Any, ...]:
    """The three statements as CTEs of a one-statement change whose changed
    stamp is ``stamp_idx`` over ``froms`` (PostgreSQL: every CTE sees the same
    snapshot, so the inserts read the pass rows the touch updates)."""
    return (
        touch(stamp_idx).cte("wallet_touched"),
        pushes(stamp_idx, froms).cte("wallet_pushes"),
        syncs(stamp_idx, froms).cte("wallet_syncs"),
    )


_STAMP = bindparam("p_stamp_idx", type_=wallet_pass.c.stamp_idx.type)
TOUCH = touch(_STAMP)
PUSH = pushes(_STAMP)
SYNC = syncs(_STAMP)
VOID = touch(
    _STAMP, voided_yn="Y", snapshot=bindparam("p_snapshot", type_=wallet_pass.c.snapshot.type)
)
STATEMENTS = (TOUCH, PUSH, SYNC)


async def enqueue(conn: AsyncConnection, ctx: CallContext, *, stamp_idx: int) -> None:
    """Queue the wallet updates of one change to ``stamp_idx`` (none without a pass)."""
    values = {"p_stamp_idx": stamp_idx, "p_now": ctx.now_naive}
    for statement in STATEMENTS:
        await conn.execute(statement, values)


async def void(conn: AsyncConnection, ctx: CallContext, row: Any) -> None:
    """The stamp (its view ``row``) is being deleted: void its pass, keep what
    it showed, queue its updates."""
    values = {"p_stamp_idx": row.stamp_idx, "p_now": ctx.now_naive, "p_snapshot": snapshot_of(row)}
    await conn.execute(VOID, values)
    await conn.execute(PUSH, values)
    await conn.execute(SYNC, values)
