"""Webhooks (owner): endpoints (add, switch off or on, delete), each with its
delivery log (every attempt), replay of a message or of every failed one,
and secret rotation (the new secret shown once; the old one keeps signing
for 24 hours). All through the API's own webhook service, with the same
check of the URL before it is saved."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from stampbook.dashboard.forms import model_from, perform, read
from stampbook.dashboard.web import PREFIX, DashRoute, Desk, NotFound, require
from stampbook.kit.context import CallContext
from stampbook.kit.errors import Code, StampbookError
from stampbook.page.web import text_field
from stampbook.webhooks import service as webhooks
from stampbook.webhooks.safety import vet_endpoint_url
from stampbook.webhooks.schemas import CreateWebhook, ReplayWebhook, UpdateWebhook

router = APIRouter(route_class=DashRoute, include_in_schema=False, tags=["dashboard"])
LOG_SHOWN = 30
ENDPOINTS_SHOWN = 100


async def _list_page(desk: Desk, *, status: int = 200, **extra: Any) -> Response:
    async def work(conn: AsyncConnection, ctx: CallContext) -> list[dict[str, Any]]:
        listed = await webhooks.list_endpoints(conn, ctx, limit=ENDPOINTS_SHOWN, cursor=None)
        items: list[dict[str, Any]] = listed["items"]
        return items

    return desk.render("webhooks.html", status=status, endpoints=await read(desk, work), **extra)


@router.api_route(f"{PREFIX}/webhooks", methods=["GET", "HEAD"])
async def endpoints(desk: Desk = Depends(require("owner"))) -> Response:
    """The account's webhook endpoints."""
    return await _list_page(desk)


@router.post(f"{PREFIX}/webhooks")
async def add_endpoint(desk: Desk = Depends(require("owner"))) -> Response:
    """Register an endpoint; its secret is shown on this answer only."""
    form = await desk.form()
    url = text_field(form, "url")
    allow_private = desk.runtime.settings.webhook_allow_private
    try:
        body = model_from(CreateWebhook, {"url": url})
        await vet_endpoint_url(body.url, allow_private=allow_private)
    except StampbookError as exc:
        return await _list_page(desk, status=409, error=exc.message(desk.lang))
    outcome = await perform(desk, form, lambda conn, ctx: webhooks.create(conn, ctx, body))
    if outcome.value is None:
        return desk.redirect(f"{PREFIX}/webhooks")
    return await _list_page(desk, created=outcome.value)


async def _endpoint(desk: Desk, webhook_idx: int) -> tuple[dict[str, Any], dict[str, Any]]:
    async def work(conn: AsyncConnection, ctx: CallContext) -> tuple[Any, Any]:
        listed = await webhooks.list_endpoints(conn, ctx, limit=ENDPOINTS_SHOWN, cursor=None)
        found = [e for e in listed["items"] if e["webhookIdx"] == webhook_idx]
        if not found:
            raise NotFound
        log = await webhooks.deliveries(
            conn, ctx, webhook_idx=webhook_idx, status=None, limit=LOG_SHOWN, cursor=None
        )
        return found[0], log

    return await read(desk, work)


async def _endpoint_page(
    desk: Desk, webhook_idx: int, *, status: int = 200, **extra: Any
) -> Response:
    endpoint, log = await _endpoint(desk, webhook_idx)
    done = desk.request.query_params.get("done")
    return desk.render(
        "webhook.html",
        status=status,
        e=endpoint,
        log=log["items"],
        notice=desk.t("done_" + done) if done in ("replayed", "saved") else None,
        **extra,
    )


@router.api_route(f"{PREFIX}/webhooks/{{webhook_idx:int}}", methods=["GET", "HEAD"])
async def endpoint(
    request: Request, webhook_idx: int, desk: Desk = Depends(require("owner"))
) -> Response:
    """One endpoint: its settings and its delivery log with every attempt."""
    return await _endpoint_page(desk, webhook_idx)


@router.post(f"{PREFIX}/webhooks/{{webhook_idx:int}}/{{change}}")
async def change_endpoint(
    webhook_idx: int, change: str, desk: Desk = Depends(require("owner"))
) -> Response:
    """Rotate the secret, switch off/on, replay (one message or every failed
    one), or delete."""
    if change not in ("rotate", "disable", "enable", "replay", "delete"):
        raise NotFound
    form = await desk.form()
    await _endpoint(desk, webhook_idx)  # 404 for another account's id

    async def work(conn: AsyncConnection, ctx: CallContext) -> dict[str, Any] | None:
        if change == "delete":
            await webhooks.delete(conn, ctx, webhook_idx=webhook_idx)
            return None
        if change == "replay":
            msg_id = text_field(form, "msgId") or None
            body = model_from(ReplayWebhook, {"webhookIdx": webhook_idx, "msgId": msg_id})
            return await webhooks.replay(conn, ctx, webhook_idx=webhook_idx, msg_id=body.msgId)
        fields: dict[str, Any] = {"webhookIdx": webhook_idx}
        if change == "rotate":
            fields["rotateSecretYn"] = "Y"
        else:
            fields["activeYn"] = "N" if change == "disable" else "Y"
        return await webhooks.update(conn, ctx, model_from(UpdateWebhook, fields))

    outcome = await perform(desk, form, work)
    if outcome.refusal is not None:
        if outcome.refusal.code == Code.WEBHOOK_NOT_FOUND:
            raise NotFound
        return await _endpoint_page(
            desk, webhook_idx, status=409, error=outcome.refusal.message(desk.lang)
        )
    if change == "delete":
        return desk.redirect(f"{PREFIX}/webhooks")
    if change == "rotate" and outcome.value:
        return await _endpoint_page(desk, webhook_idx, secret=outcome.value["secret"])
    done = "replayed" if change == "replay" else "saved"
    return desk.redirect(f"{PREFIX}/webhooks/{webhook_idx}?done={done}")
