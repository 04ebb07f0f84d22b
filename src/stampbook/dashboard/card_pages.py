"""Cards (owner): list, create, edit every field, deactivate or reactivate,
delete an unused one, and a preview of the card as the customer's stamp page draws it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import FormData
from starlette.responses import Response

from stampbook.cards import service as cards
from stampbook.cards.schemas import CreateCard, UpdateCard
from stampbook.dashboard.customers_pages import card_choices
from stampbook.dashboard.forms import model_from, optional_text, perform, read, whole_number
from stampbook.dashboard.web import PREFIX, DashRoute, Desk, NotFound, require
from stampbook.kit.context import CallContext
from stampbook.kit.errors import Code, StampbookError
from stampbook.page.service import STATE_ACTIVE, Card, web_url
from stampbook.page.web import raw_field, text_field
from stampbook.stamps.views import DEFAULT_STAMP_IMAGE_PATH

router = APIRouter(route_class=DashRoute, include_in_schema=False, tags=["dashboard"])
# How many stamps the preview shows collected: enough to see both kinds of slot.
PREVIEW_STAMPS = 3


def preview(card: dict[str, Any], desk: Desk) -> Card:
    """The card as a customer would see a new stamp of it (a few stamps in)."""
    today = desk.runtime.clock.today(desk.zone)
    maximum = int(card.get("maxStamps") or 10)
    return Card(
        token="preview",
        name=card.get("cardNm") or "",
        title=card.get("cardTtl"),
        stamps=min(PREVIEW_STAMPS, maximum),
        max_stamps=maximum,
        image_url=web_url(card.get("stampImgUrl")) or DEFAULT_STAMP_IMAGE_PATH,
        url=web_url(card.get("url")),
        strt=today,
        end=today + timedelta(days=365),
        state=STATE_ACTIVE,
        onsite=card.get("onsiteYn") == "Y",
        page_url="",
        has_pin=False,
        pin_locked_minutes=0,
        onsite_locked_minutes=0,
        personal=(),
    )


def card_values(form: FormData) -> dict[str, Any]:
    """The card fields of a form, as the API's card bodies name them."""
    return {
        "cardNm": text_field(form, "cardNm"),
        "cardTtl": optional_text(form, "cardTtl"),
        "maxStamps": whole_number(form, "maxStamps"),
        "url": optional_text(form, "url"),
        "stampImgUrl": optional_text(form, "stampImgUrl"),
        "onsiteYn": "Y" if text_field(form, "onsiteYn") == "Y" else "N",
        "onsitePwd": raw_field(form, "onsitePwd") or None,
        "minIntervalSec": whole_number(form, "minIntervalSec") or 0,
        "autoRenewYn": "Y" if text_field(form, "autoRenewYn") == "Y" else "N",
        "maxAddsPerDay": whole_number(form, "maxAddsPerDay") or 0,
        "suspiciousAddsPerDay": whole_number(form, "suspiciousAddsPerDay") or 0,
    }


@router.api_route(f"{PREFIX}/cards", methods=["GET", "HEAD"])
async def card_list(desk: Desk = Depends(require("owner"))) -> Response:
    """The account's cards."""
    found = await read(desk, card_choices)
    return desk.render("cards.html", cards=found)


def _form(desk: Desk, values: dict[str, Any], *, status: int = 200, **extra: Any) -> Response:
    return desk.render(
        "card_form.html", status=status, v=values, card=preview(values, desk), card_level=2, **extra
    )


@router.api_route(f"{PREFIX}/cards/new", methods=["GET", "HEAD"])
async def new_card_form(desk: Desk = Depends(require("owner"))) -> Response:
    """The form that defines a card."""
    return _form(desk, {"maxStamps": 10, "onsiteYn": "N", "minIntervalSec": 0}, card_idx=None)


@router.post(f"{PREFIX}/cards/new")
async def new_card(desk: Desk = Depends(require("owner"))) -> Response:
    """Define a card through the API's own service."""
    form = await desk.form()
    values: dict[str, Any] = {}

    async def work(conn: AsyncConnection, ctx: CallContext) -> int:
        values.update(card_values(form))
        return await cards.create(conn, ctx, model_from(CreateCard, values))

    outcome = await perform(desk, form, work)
    if outcome.repeated:
        return desk.redirect(f"{PREFIX}/cards")
    if outcome.refusal is not None:
        shown = values or {"cardNm": text_field(form, "cardNm")}
        return _form(
            desk, shown, status=409, card_idx=None, error=outcome.refusal.message(desk.lang)
        )
    return desk.redirect(f"{PREFIX}/cards/{outcome.value}?done=saved")


async def _card(desk: Desk, card_idx: int) -> dict[str, Any]:
    async def work(conn: AsyncConnection, ctx: CallContext) -> dict[str, Any]:
        try:
            return await cards.get(conn, ctx, card_idx=card_idx)
        except StampbookError as exc:
            if exc.code == Code.CARD_NOT_FOUND:
                raise NotFound from exc
            raise

    return await read(desk, work)


@router.api_route(f"{PREFIX}/cards/{{card_idx:int}}", methods=["GET", "HEAD"])
async def edit_card_form(card_idx: int, desk: Desk = Depends(require("owner"))) -> Response:
    """A card's fields, editable, beside its preview."""
    values = await _card(desk, card_idx)
    saved = desk.request.query_params.get("done") == "saved"
    return _form(desk, values, card_idx=card_idx, notice=desk.t("saved") if saved else None)


@router.post(f"{PREFIX}/cards/{{card_idx:int}}")
async def edit_card(card_idx: int, desk: Desk = Depends(require("owner"))) -> Response:
    """Change every field of a card through the API's own service."""
    form = await desk.form()
    current = await _card(desk, card_idx)

    async def work(conn: AsyncConnection, ctx: CallContext) -> None:
        values = card_values(form)
        if values["onsitePwd"] is None:
            del values["onsitePwd"]  # left empty: keep the password as it is
        await cards.update(conn, ctx, model_from(UpdateCard, {"cardIdx": card_idx, **values}))

    outcome = await perform(desk, form, work)
    if outcome.refusal is not None:
        return _form(
            desk, current, status=409, card_idx=card_idx, error=outcome.refusal.message(desk.lang)
        )
    return desk.redirect(f"{PREFIX}/cards/{card_idx}?done=saved")


@router.post(f"{PREFIX}/cards/{{card_idx:int}}/active")
async def set_card_active(card_idx: int, desk: Desk = Depends(require("owner"))) -> Response:
    """Deactivate (``activeYn=N``: no new stamps) or reactivate a card through
    the API's own update."""
    form = await desk.form()
    current = await _card(desk, card_idx)
    active = "N" if text_field(form, "activeYn") == "N" else "Y"

    async def work(conn: AsyncConnection, ctx: CallContext) -> None:
        body = model_from(UpdateCard, {"cardIdx": card_idx, "activeYn": active})
        await cards.update(conn, ctx, body)

    outcome = await perform(desk, form, work)
    if outcome.refusal is not None:
        return _form(
            desk, current, status=409, card_idx=card_idx, error=outcome.refusal.message(desk.lang)
        )
    return desk.redirect(f"{PREFIX}/cards/{card_idx}?done=saved")


@router.post(f"{PREFIX}/cards/{{card_idx:int}}/delete")
async def delete_card(card_idx: int, desk: Desk = Depends(require("owner"))) -> Response:
    """Delete a card no stamp was issued on (2102 otherwise)."""
    form = await desk.form()
    current = await _card(desk, card_idx)
    outcome = await perform(
        desk, form, lambda conn, ctx: cards.delete(conn, ctx, card_idx=card_idx)
    )
    if outcome.refusal is not None:
        return _form(
            desk, current, status=409, card_idx=card_idx, error=outcome.refusal.message(desk.lang)
        )
    return desk.redirect(f"{PREFIX}/cards")
