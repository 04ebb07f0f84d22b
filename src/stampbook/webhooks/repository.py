"""SQL for webhook endpoints, messages and attempts. Builds and runs statements;
never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, exists, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.db.schema import webhook_attempt, webhook_endpoint, webhook_message

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"

_candidate = webhook_message.alias("candidate")
_earlier = webhook_message.alias("earlier")


# --- endpoints ---------------------------------------------------------------


async def insert_endpoint(conn: AsyncConnection, values: dict[str, Any]) -> int:
    """Insert an endpoint; returns its webhookIdx."""
    result = await conn.execute(
        insert(webhook_endpoint).values(**values).returning(webhook_endpoint.c.webhook_idx)
    )
    return int(result.scalar_one())


async def get_endpoint(
    conn: AsyncConnection, *, account_idx: int, webhook_idx: int, for_update: bool = False
) -> Row[Any] | None:
    """The endpoint, or None when it is not in this account."""
    query = select(webhook_endpoint).where(
        webhook_endpoint.c.webhook_idx == webhook_idx,
        webhook_endpoint.c.account_idx == account_idx,
    )
    if for_update:
        query = query.with_for_update()
    return (await conn.execute(query)).first()


async def list_endpoints(
    conn: AsyncConnection, *, account_idx: int, limit: int, before_idx: int | None
) -> list[Row[Any]]:
    """A page of the account's endpoints, newest first (``limit + 1`` rows at most)."""
    query = select(webhook_endpoint).where(webhook_endpoint.c.account_idx == account_idx)
    if before_idx is not None:
        query = query.where(webhook_endpoint.c.webhook_idx < before_idx)
    query = query.order_by(webhook_endpoint.c.webhook_idx.desc()).limit(limit + 1)
    return list((await conn.execute(query)).all())


async def update_endpoint(
    conn: AsyncConnection, *, webhook_idx: int, values: dict[str, Any]
) -> None:
    """Set columns of an endpoint."""
    await conn.execute(
        update(webhook_endpoint)
        .where(webhook_endpoint.c.webhook_idx == webhook_idx)
        .values(**values)
    )


async def delete_endpoint(conn: AsyncConnection, *, account_idx: int, webhook_idx: int) -> bool:
    """Delete an endpoint (its messages and attempts go with it, by cascade)."""
    result = await conn.execute(
        delete(webhook_endpoint).where(
            webhook_endpoint.c.webhook_idx == webhook_idx,
            webhook_endpoint.c.account_idx == account_idx,
        )
    )
    return bool(result.rowcount)


# --- the delivery log ----------------------------------------------------------


async def list_messages(
    conn: AsyncConnection,
    *,
    webhook_idx: int,
    status: str | None,
    limit: int,
    before_idx: int | None,
) -> list[Row[Any]]:
    """A page of an endpoint's messages, newest first (``limit + 1`` rows at most)."""
    query = select(webhook_message).where(webhook_message.c.webhook_idx == webhook_idx)
    if status is not None:
        query = query.where(webhook_message.c.status == status)
    if before_idx is not None:
        query = query.where(webhook_message.c.message_idx < before_idx)
    query = query.order_by(webhook_message.c.message_idx.desc()).limit(limit + 1)
    return list((await conn.execute(query)).all())


async def attempts_of(conn: AsyncConnection, *, message_idxs: list[int]) -> list[Row[Any]]:
    """Every attempt of these messages, oldest first."""
    if not message_idxs:
        return []
    query = (
        select(webhook_attempt)
        .where(webhook_attempt.c.message_idx.in_(message_idxs))
        .order_by(webhook_attempt.c.attempt_idx)
    )
    return list((await conn.execute(query)).all())


async def requeue_message(
    conn: AsyncConnection, *, webhook_idx: int, msg_id: str, now: datetime
) -> bool:
    """Send one message again from the start of the schedule; False when no such message.

    A message still pending is only brought forward: its lease, if a worker
    holds one, stays that worker's.
    """
    found = (
        await conn.execute(
            select(webhook_message.c.message_idx, webhook_message.c.status).where(
                webhook_message.c.webhook_idx == webhook_idx,
                webhook_message.c.msg_id == msg_id,
            )
        )
    ).first()
    if found is None:
        return False
    values: dict[str, Any] = {"next_attempt_at": now}
    if found.status != PENDING:
        values.update(status=PENDING, attempts=0, locked_until=None, locked_by=None)
    await conn.execute(
        update(webhook_message)
        .where(webhook_message.c.message_idx == found.message_idx)
        .values(**values)
    )
    return True


async def requeue_failed(conn: AsyncConnection, *, webhook_idx: int, now: datetime) -> int:
    """Send every failed message of an endpoint again; returns how many."""
    result = await conn.execute(
        update(webhook_message)
        .where(webhook_message.c.webhook_idx == webhook_idx, webhook_message.c.status == FAILED)
        .values(status=PENDING, attempts=0, next_attempt_at=now, locked_until=None, locked_by=None)
    )
    return int(result.rowcount or 0)


# --- the dispatcher's side ---------------------------------------------------------


async def claim(
    conn: AsyncConnection, *, now: datetime, lease_until: datetime, worker: str, limit: int
) -> list[Row[Any]]:
    """Lease up to ``limit`` due messages to ``worker``; returns them.

    Due: pending, its time has come, not leased (or the lease ran out: its
    worker died), its endpoint active, and no earlier message of the same
    endpoint and stamp still pending — so each stamp's events reach each
    endpoint in the order they happened. On PostgreSQL ``FOR UPDATE SKIP
    LOCKED`` lets several workers claim at once without waiting on or taking
    each other's rows; SQLite serialises writers, so one claim runs at a time.
    """
    c = _candidate
    due = (
        select(c.c.message_idx)
        .where(
            c.c.status == PENDING,
            c.c.next_attempt_at <= now,
            or_(c.c.locked_until.is_(None), c.c.locked_until <= now),
            exists().where(
                webhook_endpoint.c.webhook_idx == c.c.webhook_idx,
                webhook_endpoint.c.active_yn == "Y",
            ),
            ~exists().where(
                and_(
                    _earlier.c.webhook_idx == c.c.webhook_idx,
                    _earlier.c.stamp_idx == c.c.stamp_idx,
                    _earlier.c.status == PENDING,
                    _earlier.c.message_idx < c.c.message_idx,
                )
            ),
        )
        .order_by(c.c.message_idx)
        .limit(limit)
        .with_for_update(of=c, skip_locked=True)
    )
    m = webhook_message
    claimed = (
        await conn.execute(
            update(m)
            .where(m.c.message_idx.in_(due.scalar_subquery()))
            .values(locked_until=lease_until, locked_by=worker)
            .returning(
                m.c.message_idx,
                m.c.msg_id,
                m.c.webhook_idx,
                m.c.payload,
                m.c.attempts,
                m.c.created_at,
            )
        )
    ).all()
    return sorted(claimed, key=lambda row: int(row.message_idx))


async def endpoints_by_idx(conn: AsyncConnection, *, webhook_idxs: set[int]) -> dict[int, Any]:
    """The endpoints (url and secrets) of claimed messages, by webhookIdx."""
    if not webhook_idxs:
        return {}
    rows = await conn.execute(
        select(
            webhook_endpoint.c.webhook_idx,
            webhook_endpoint.c.url,
            webhook_endpoint.c.secret,
            webhook_endpoint.c.previous_secret,
            webhook_endpoint.c.previous_secret_until,
        ).where(webhook_endpoint.c.webhook_idx.in_(webhook_idxs))
    )
    return {int(row.webhook_idx): row for row in rows}


async def insert_attempt(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """Log one attempt, unless its message is gone (its endpoint was deleted meanwhile)."""
    columns = list(values)
    source = select(*(literal(values[name]) for name in columns)).where(
        exists().where(webhook_message.c.message_idx == values["message_idx"])
    )
    await conn.execute(insert(webhook_attempt).from_select(columns, source))


async def settle(
    conn: AsyncConnection, *, message_idx: int, worker: str, values: dict[str, Any]
) -> bool:
    """Write an attempt's outcome and release the lease, if ``worker`` still holds it.

    False when the lease was lost (another worker took the message over after
    this one's lease ran out): that worker's outcome is the one that counts.
    """
    result = await conn.execute(
        update(webhook_message)
        .where(webhook_message.c.message_idx == message_idx, webhook_message.c.locked_by == worker)
        .values(
            attempts=webhook_message.c.attempts + 1,
            locked_until=None,
            locked_by=None,
            **values,
        )
    )
    return bool(result.rowcount)


async def disable_endpoint(conn: AsyncConnection, *, webhook_idx: int, reason: str) -> None:
    """Switch an endpoint off (it answered 410 Gone)."""
    await conn.execute(
        update(webhook_endpoint)
        .where(webhook_endpoint.c.webhook_idx == webhook_idx)
        .values(active_yn="N", disabled_reason=reason[:200])
    )


async def purge_settled(conn: AsyncConnection, *, before: datetime) -> int:
    """Delete delivered and failed messages created before ``before`` (their
    attempts go with them); pending messages are never purged."""
    result = await conn.execute(
        delete(webhook_message).where(
            webhook_message.c.status.in_((DELIVERED, FAILED)),
            webhook_message.c.created_at < before,
        )
    )
    return int(result.rowcount or 0)


async def queue_depth(conn: AsyncConnection) -> int:
    """How many messages wait to be delivered (pending, due or not), every account."""
    m = webhook_message
    query = select(func.count()).select_from(m).where(m.c.status == PENDING)
    return int((await conn.execute(query)).scalar_one())
