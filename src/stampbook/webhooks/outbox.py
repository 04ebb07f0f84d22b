"""The transactional outbox: webhook messages written with the change itself.

``enqueue`` runs inside the stamp change's transaction, so a committed change
always has its messages and a rolled-back one never does. One INSERT … SELECT
fans the event out to every matching endpoint of the account (none: no rows).
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from sqlalchemy import DateTime, Integer, String, Text, bindparam, cast, insert, or_, select
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


# Built once with bound parameters (the statement runs on every stamp change;
# rebuilding it per call was the largest item of an add's profile, see
# bench/README.md). The SQL sent is the same as before.
ENQUEUE = insert(webhook_message).from_select(
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
    select(
        bindparam("p_msg_prefix", type_=String).concat(
            cast(webhook_endpoint.c.webhook_idx, String)
        ),
        webhook_endpoint.c.webhook_idx,
        bindparam("p_account_idx", type_=webhook_endpoint.c.account_idx.type),
        bindparam("p_stamp_idx", type_=webhook_message.c.stamp_idx.type),
        bindparam("p_event_type", type_=String),
        bindparam("p_payload", type_=Text),
        bindparam("p_status", type_=String),
        bindparam("p_attempts", type_=Integer),
        bindparam("p_next_attempt_at", type_=DateTime),
        bindparam("p_created_at", type_=DateTime),
    ).where(
        webhook_endpoint.c.account_idx == bindparam("p_account_idx"),
        webhook_endpoint.c.active_yn == "Y",
        or_(
            webhook_endpoint.c.card_idx.is_(None),
            webhook_endpoint.c.card_idx == bindparam("p_card_idx"),
        ),
        or_(
            webhook_endpoint.c.events.is_(None),
            webhook_endpoint.c.events.contains(bindparam("p_event_pattern", type_=String)),
        ),
    ),
)


def message_prefix() -> str:
    """A fresh message-id prefix; each endpoint's message id is it plus the endpoint's idx."""
    return f"msg_{secrets.token_hex(12)}_"


def enqueue_values(
    ctx: CallContext, *, event_type: str, card_idx: int, stamp_idx: int, payload: bytes
) -> dict[str, Any]:
    """``ENQUEUE``'s parameters for one event of one stamp."""
    now = ctx.now_naive
    return {
        "p_msg_prefix": message_prefix(),
        "p_account_idx": ctx.account_idx,
        "p_stamp_idx": stamp_idx,
        "p_event_type": event_type,
        "p_payload": payload.decode(),
        "p_status": "pending",
        "p_attempts": 0,
        "p_next_attempt_at": now,
        "p_created_at": now,
        "p_card_idx": card_idx,
        "p_event_pattern": f",{event_type},",
    }


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
    values = enqueue_values(
        ctx, event_type=event_type, card_idx=card_idx, stamp_idx=stamp_idx, payload=payload
    )
    await conn.execute(ENQUEUE, values)
