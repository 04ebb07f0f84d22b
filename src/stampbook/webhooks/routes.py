"""The webhook endpoints API (extension): create, list, update, delete,
deliveries (the delivery log) and replay."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from starlette.responses import Response

from stampbook.kit.call import Call, authenticate
from stampbook.kit.openapi import responses_for
from stampbook.kit.params import DEFAULT_PAGE_SIZE, Cursor, Limit, QueryIdx
from stampbook.webhooks import service
from stampbook.webhooks.safety import vet_endpoint_url
from stampbook.webhooks.schemas import CreateWebhook, MessageStatus, ReplayWebhook, UpdateWebhook

router = APIRouter(prefix="/api/stamp/v1/webhook", tags=["webhooks"])


class WebhookSecret(BaseModel):
    """An endpoint's id and its signing secret (``whsec_…``), shown only here."""

    webhookIdx: int
    secret: str


class WebhookView(BaseModel):
    """The endpoint object."""

    webhookIdx: int
    url: str
    cardIdx: int | None
    events: list[str] | None
    activeYn: str
    disabledReason: str | None
    regYmdt: str


class WebhookPage(BaseModel):
    """A page of endpoints."""

    items: list[WebhookView]
    nextCursor: str | None


class AttemptView(BaseModel):
    """One delivery attempt: the HTTP status, or the error in its place."""

    attemptedYmdt: str
    statusCode: int | None
    latencyMs: int
    response: str | None
    error: str | None


class MessageView(BaseModel):
    """One message (one event for one endpoint) with its attempts, oldest first."""

    msgId: str
    eventType: str
    stampIdx: int | None
    status: str
    nextAttemptYmdt: str | None
    createdYmdt: str
    deliveredYmdt: str | None
    payload: dict[str, Any]
    attempts: list[AttemptView]


class MessagePage(BaseModel):
    """A page of the delivery log."""

    items: list[MessageView]
    nextCursor: str | None


class Replayed(BaseModel):
    """How many messages were queued again."""

    replayed: int


@router.post("/create", responses=responses_for(WebhookSecret))
async def create_webhook(body: CreateWebhook, call: Call = Depends(authenticate)) -> Response:
    """Register an endpoint; the result carries its secret, shown only this once."""
    await vet_endpoint_url(body.url, allow_private=call.runtime.settings.webhook_allow_private)
    return await call.write(lambda conn, ctx: service.create(conn, ctx, body), params=body.sent())


@router.get("/list", responses=responses_for(WebhookPage))
async def list_webhooks(
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
    call: Call = Depends(authenticate),
) -> Response:
    """A page of the account's endpoints, newest first."""
    return await call.read(
        lambda conn, ctx: service.list_endpoints(conn, ctx, limit=limit, cursor=cursor)
    )


@router.put("/update", responses=responses_for(WebhookSecret))
async def update_webhook(body: UpdateWebhook, call: Call = Depends(authenticate)) -> Response:
    """Change only the fields sent; ``rotateSecretYn=Y`` returns a new secret."""
    if body.url is not None:
        await vet_endpoint_url(body.url, allow_private=call.runtime.settings.webhook_allow_private)
    return await call.write(lambda conn, ctx: service.update(conn, ctx, body), params=body.sent())


@router.delete("/delete", responses=responses_for(None))
async def delete_webhook(webhookIdx: QueryIdx, call: Call = Depends(authenticate)) -> Response:
    """Delete an endpoint, its pending messages and its delivery log."""
    return await call.write(
        lambda conn, ctx: service.delete(conn, ctx, webhook_idx=webhookIdx),
        params={"webhookIdx": webhookIdx},
    )


@router.get("/deliveries", responses=responses_for(MessagePage))
async def webhook_deliveries(
    webhookIdx: QueryIdx,
    status: Annotated[MessageStatus | None, Query()] = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
    call: Call = Depends(authenticate),
) -> Response:
    """The delivery log: an endpoint's messages, newest first, with every attempt."""
    return await call.read(
        lambda conn, ctx: service.deliveries(
            conn, ctx, webhook_idx=webhookIdx, status=status, limit=limit, cursor=cursor
        )
    )


@router.post("/replay", responses=responses_for(Replayed))
async def replay_webhook(body: ReplayWebhook, call: Call = Depends(authenticate)) -> Response:
    """Send one message again (``msgId``), or every failed message of the endpoint."""
    return await call.write(
        lambda conn, ctx: service.replay(conn, ctx, webhook_idx=body.webhookIdx, msg_id=body.msgId),
        params=body.sent(),
    )
