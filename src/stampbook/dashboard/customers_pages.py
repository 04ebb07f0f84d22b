"""Customers: find a customer's stamp by userId, name, phone or email
(``stamps/search.py``), by card and state, newest first, a page at a time."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from stampbook.cards import service as cards
from stampbook.dashboard.forms import read
from stampbook.dashboard.web import PREFIX, DashRoute, Desk, require
from stampbook.kit.context import CallContext
from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.params import strict_decimal
from stampbook.kit.schemas import storable_text
from stampbook.stamps import search

router = APIRouter(route_class=DashRoute, include_in_schema=False, tags=["dashboard"])
PAGE_SIZE = 20
# Cards offered in the filter and the new-stamp form (a shop has a handful).
CARD_CHOICES = 100


async def card_choices(conn: AsyncConnection, ctx: CallContext) -> list[dict[str, Any]]:
    """The account's cards, newest first, for a select box."""
    listed = await cards.list_cards(conn, ctx, limit=CARD_CHOICES, cursor=None)
    items: list[dict[str, Any]] = listed["items"]
    return items


async def issuing_choices(conn: AsyncConnection, ctx: CallContext) -> list[dict[str, Any]]:
    """The cards a stamp may newly go onto (the new-stamp form): the active
    ones, as ``stamps.rules.issue_refusal`` allows (a filter still offers all)."""
    return [card for card in await card_choices(conn, ctx) if card["activeYn"] == "Y"]


def _card_filter(value: str) -> int | None:
    try:
        return strict_decimal(value) if value else None
    except ValueError:
        return None


@router.api_route(f"{PREFIX}/customers", methods=["GET", "HEAD"])
async def customers(request: Request, desk: Desk = Depends(require("staff"))) -> Response:
    """Search the account's customers (their stamps)."""
    params = request.query_params
    text = params.get("q", "").strip()
    card_idx = _card_filter(params.get("card", ""))
    state = params.get("state", "")
    chosen_state = state if state in search.STATES else None

    async def work(conn: AsyncConnection, ctx: CallContext) -> tuple[Any, list[dict[str, Any]]]:
        if not storable_text(text):  # a NUL: PostgreSQL could not even compare it
            raise StampbookError(Code.INVALID_PARAMETER, param="q")
        found = await search.search(
            conn,
            ctx,
            text=text[: search.MAX_QUERY_LENGTH],
            card_idx=card_idx,
            state=chosen_state,
            limit=PAGE_SIZE,
            cursor=params.get("cursor") or None,
        )
        return found, await card_choices(conn, ctx)

    error = None
    try:
        found, choices = await read(desk, work)
    except StampbookError as exc:  # a cursor that is not ours, a NUL
        error = exc.message(desk.lang)
        found, choices = search.SearchPage([], None), []
    return desk.render(
        "customers.html",
        q=text,
        card_idx=card_idx,
        state=chosen_state or "",
        states=search.STATES,
        cards=choices,
        found=found,
        error=error,
        searched=bool(text or card_idx or chosen_state),
    )
