"""The transactional outbox: webhook messages written with the change itself.

``enqueue`` runs inside the stamp change's transaction, so a committed change
always has its messages and a rolled-back one never does. One INSERT … SELECT
fans the event out to every matching endpoint of the account (none: no rows).
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from sqlalchemy import String, cast, insert, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.db.schema import webhook_endpoint, webhook_message
from stampbook.kit.context import CallContext

STAMP_CREATED = "stamp.created"
STAMP_ADDED = "stamp.added"
STAMP_REMOVED = "stamp.removed"
STAMP_UPDATED = "stamp.updated"
STAMP_COMPLETED = "stamp.completed"
STAMP_USED = "stamp.used"
STAMP_DELETED = "stamp.deleted"

EVENT_TYPES = (
    STAMP_CREATED,
    STAMP_ADDED,
    STAMP_REMOVED,
    STAMP_UPDATED,
    STAMP_COMPLETED,
    STAMP_USED,
    STAMP_DELETED,
)


def build_payload(
    event_type: str,
    *,
    timestamp: str,
    stamp_view: dict[str, Any],
    stamps_before: int,
    stamps_after: int,
    source: str,
    event_idx: int | None,
) -> bytes:
    """The message body: ``{type, timestamp, data: {stamp…, counts, source, eventIdx}}``."""
    data = {
        **stamp_view,
        "stampsBefore": stamps_before,
        "stampsAfter": stamps_after,
        "source": source,
        "eventIdx": event_idx,
    }
    return orjson.dumps({"type": event_type, "timestamp": timestamp, "data": data})


async def enqueue(
    conn: AsyncConnection,
    ctx: CallContext,
    *,
    event_type: str,
    card_idx: int,
    stamp_idx: int,
    payload: bytes,
) -> None:
    """Write one message per matching, active endpoint of the account."""
    msg_prefix = f"msg_{secrets.token_hex(12)}_"
    now = ctx.now_naive
    matching = select(
        literal(msg_prefix).concat(cast(webhook_endpoint.c.webhook_idx, String)),
        webhook_endpoint.c.webhook_idx,
        literal(ctx.account_idx),
        literal(stamp_idx),
        literal(event_type),
        literal(payload.decode()),
        literal("pending"),
        literal(0),
        literal(now),
        literal(now),
    ).where(
        webhook_endpoint.c.account_idx == ctx.account_idx,
        webhook_endpoint.c.active_yn == "Y",
        or_(webhook_endpoint.c.card_idx.is_(None), webhook_endpoint.c.card_idx == card_idx),
        or_(
            webhook_endpoint.c.events.is_(None),
            webhook_endpoint.c.events.contains(f",{event_type},"),
        ),
    )
    await conn.execute(
        insert(webhook_message).from_select(
            [
                "msg_id",
                "webhook_idx",
                "account_idx",
                "stamp_idx",
                "event_type",
                "payload",
                "status",
                "attempts",
                "next_attempt_at",
                "created_at",
            ],
            matching,
        )
    )
