"""Webhook endpoints: create, list, update, delete, the delivery log and replay.

Each function runs inside the transaction its caller opened (``Call.write`` or
the CLI) and raises ``StampbookError`` to refuse. URLs are vetted for safety
(``safety.vet_endpoint_url``) by the caller *before* the transaction opens, as
that may take a DNS lookup.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.cards import repository as card_repo
from stampbook.kit.clock import format_ymdt
from stampbook.kit.context import CallContext
from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.pages import page
from stampbook.kit.params import decode_cursor
from stampbook.webhooks import outbox
from stampbook.webhooks import repository as repo
from stampbook.webhooks.schemas import CreateWebhook, UpdateWebhook
from stampbook.webhooks.signing import new_secret

# After a rotation the old secret signs beside the new one this long.
ROTATION_GRACE = timedelta(hours=24)


def encode_events(events: list[str] | None) -> str | None:
    """The stored filter: comma-wrapped, de-duplicated, so that ``",t,"`` finds a type."""
    if events is None:
        return None
    unique = list(dict.fromkeys(events))
    return "," + ",".join(unique) + ","


def decode_events(stored: str | None) -> list[str] | None:
    """The filter as the wire shows it: a list, or null for every event."""
    if stored is None:
        return None
    return [name for name in stored.split(",") if name]


def render_endpoint(row: Any, zone: Any) -> dict[str, Any]:
    """The endpoint object (never its secret)."""
    return {
        "webhookIdx": row.webhook_idx,
        "url": row.url,
        "cardIdx": row.card_idx,
        "events": decode_events(row.events),
        "activeYn": row.active_yn,
        "disabledReason": row.disabled_reason,
        "regYmdt": format_ymdt(row.reg_ymdt, zone),
    }


def _ymdt(value: Any, zone: Any) -> str | None:
    return format_ymdt(value, zone) if value is not None else None


def render_attempt(row: Any, zone: Any) -> dict[str, Any]:
    """One delivery attempt as the log shows it."""
    return {
        "attemptedYmdt": format_ymdt(row.attempted_at, zone),
        "statusCode": row.status_code,
        "latencyMs": row.latency_ms,
        "response": row.response_excerpt,
        "error": row.error,
    }


def render_message(row: Any, attempts: list[Any], zone: Any) -> dict[str, Any]:
    """One message with its attempts, oldest first."""
    return {
        "msgId": row.msg_id,
        "eventType": row.event_type,
        "stampIdx": row.stamp_idx,
        "status": row.status,
        "nextAttemptYmdt": (
            format_ymdt(row.next_attempt_at, zone) if row.status == repo.PENDING else None
        ),
        "createdYmdt": format_ymdt(row.created_at, zone),
        "deliveredYmdt": _ymdt(row.delivered_at, zone),
        "payload": orjson.loads(outbox.deliverable(row.payload)),
        "attempts": [render_attempt(attempt, zone) for attempt in attempts],
    }


async def _existing(
    conn: AsyncConnection, ctx: CallContext, webhook_idx: int, *, for_update: bool = False
) -> Any:
    row = await repo.get_endpoint(
        conn, account_idx=ctx.account_idx, webhook_idx=webhook_idx, for_update=for_update
    )
    if row is None:
        raise StampbookError(Code.WEBHOOK_NOT_FOUND)
    return row


async def _require_card(conn: AsyncConnection, ctx: CallContext, card_idx: int | None) -> None:
    if card_idx is not None and (
        await card_repo.get(conn, account_idx=ctx.account_idx, card_idx=card_idx) is None
    ):
        raise StampbookError(Code.CARD_NOT_FOUND)


async def create(conn: AsyncConnection, ctx: CallContext, body: CreateWebhook) -> dict[str, Any]:
    """Register an endpoint; the result carries its secret, shown this once."""
    await _require_card(conn, ctx, body.cardIdx)
    secret = new_secret()
    webhook_idx = await repo.insert_endpoint(
        conn,
        {
            "account_idx": ctx.account_idx,
            "url": body.url,
            "card_idx": body.cardIdx,
            "events": encode_events(list(body.events) if body.events is not None else None),
            "secret": secret,
            "active_yn": "Y",
            "reg_ymdt": ctx.now_naive,
        },
    )
    return {"webhookIdx": webhook_idx, "secret": secret}


async def list_endpoints(
    conn: AsyncConnection, ctx: CallContext, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """A page of the account's endpoints, newest first."""
    rows = await repo.list_endpoints(
        conn, account_idx=ctx.account_idx, limit=limit, before_idx=decode_cursor(cursor)
    )
    return page(
        rows,
        limit=limit,
        render=lambda row: render_endpoint(row, ctx.zone),
        idx_of=lambda row: int(row.webhook_idx),
    )


async def update(
    conn: AsyncConnection, ctx: CallContext, body: UpdateWebhook
) -> dict[str, Any] | None:
    """Change only the fields sent. With ``rotateSecretYn=Y`` the result is the new
    secret (shown this once); the old one keeps signing beside it for 24 hours."""
    row = await _existing(conn, ctx, body.webhookIdx, for_update=True)
    sent = body.model_fields_set
    values: dict[str, Any] = {}
    if "url" in sent:
        values["url"] = body.url
    if "cardIdx" in sent:
        await _require_card(conn, ctx, body.cardIdx)
        values["card_idx"] = body.cardIdx
    if "events" in sent:
        values["events"] = encode_events(list(body.events) if body.events is not None else None)
    if body.activeYn is not None:
        values["active_yn"] = body.activeYn
        if body.activeYn == "Y":
            values["disabled_reason"] = None
    secret: str | None = None
    if body.rotateSecretYn == "Y":
        secret = new_secret()
        values.update(
            secret=secret,
            previous_secret=row.secret,
            previous_secret_until=ctx.now_naive + ROTATION_GRACE,
        )
    if values:
        await repo.update_endpoint(conn, webhook_idx=body.webhookIdx, values=values)
    return {"webhookIdx": body.webhookIdx, "secret": secret} if secret else None


async def delete(conn: AsyncConnection, ctx: CallContext, *, webhook_idx: int) -> None:
    """Delete an endpoint with its pending messages and its delivery log."""
    if not await repo.delete_endpoint(conn, account_idx=ctx.account_idx, webhook_idx=webhook_idx):
        raise StampbookError(Code.WEBHOOK_NOT_FOUND)


async def deliveries(
    conn: AsyncConnection,
    ctx: CallContext,
    *,
    webhook_idx: int,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """A page of an endpoint's messages, newest first, each with its attempts."""
    before = decode_cursor(cursor)
    await _existing(conn, ctx, webhook_idx)
    rows = await repo.list_messages(
        conn, webhook_idx=webhook_idx, status=status, limit=limit, before_idx=before
    )
    attempts: dict[int, list[Any]] = defaultdict(list)
    for attempt in await repo.attempts_of(
        conn, message_idxs=[int(row.message_idx) for row in rows[:limit]]
    ):
        attempts[int(attempt.message_idx)].append(attempt)
    return page(
        rows,
        limit=limit,
        render=lambda row: render_message(row, attempts[int(row.message_idx)], ctx.zone),
        idx_of=lambda row: int(row.message_idx),
    )


async def replay(
    conn: AsyncConnection, ctx: CallContext, *, webhook_idx: int, msg_id: str | None
) -> dict[str, int]:
    """Send one message again (any status), or every failed one of the endpoint.

    A replayed message keeps its ``webhook-id`` and body, so a receiver that
    already has it recognises it; its retry schedule starts afresh.
    """
    await _existing(conn, ctx, webhook_idx)
    now = ctx.now_naive
    if msg_id is not None:
        if not await repo.requeue_message(conn, webhook_idx=webhook_idx, msg_id=msg_id, now=now):
            raise StampbookError(Code.WEBHOOK_MESSAGE_NOT_FOUND)
        return {"replayed": 1}
    return {"replayed": await repo.requeue_failed(conn, webhook_idx=webhook_idx, now=now)}


async def queue_depth(conn: AsyncConnection) -> int:
    """The outbox's pending messages, server-wide (the metrics' queue depth)."""
    return await repo.queue_depth(conn)
