"""The Till (staff and owners): a large one-time QR code on the shop's screen.
A customer scans it (``/c/{code}``) for the code's stamps; once it is claimed
or expires, the screen shows a new one by itself: htmx polls the page every
two seconds and swaps the code in, and without JavaScript a meta refresh
reloads it every three.

The code shown is remembered in a cookie of the till's browser (only its
hash is in the database, so the screen must keep the code itself); each
till device shows its own code, and a reload shows the same code until it
is used.
"""

from __future__ import annotations

from typing import Any

import segno
from fastapi import APIRouter, Depends
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from stampbook.codes import service as codes
from stampbook.codes.schemas import CreateCode
from stampbook.dashboard.customers_pages import card_choices
from stampbook.dashboard.forms import model_from, read
from stampbook.dashboard.web import PREFIX, DashRoute, Desk, require
from stampbook.kit.context import CallContext
from stampbook.kit.errors import StampbookError
from stampbook.kit.params import strict_decimal

router = APIRouter(route_class=DashRoute, include_in_schema=False, tags=["dashboard"])

COOKIE_TILL = "sb_till"
TILL_COOKIE_SECONDS = 7 * 24 * 3600
DEFAULT_TTL = 300
TTL_CHOICES = (60, 300, 600, 3600)
POLL_SECONDS = 2
REFRESH_SECONDS = 3


def _number(value: str | None, default: int) -> int | str:
    """A query number by the API's strict rule; the text itself when it is not one
    (the request model then names the field)."""
    if value is None or value == "":
        return default
    try:
        return strict_decimal(value)
    except ValueError:
        return value


def qr_svg(url: str, title: str) -> Markup:
    """The code's URL as an inline SVG QR code, large and crisp on any screen."""
    svg = segno.make(url, error="m", micro=False).svg_inline(
        scale=10, dark="#000000", light="#ffffff", title=title, svgclass="till-svg", omitsize=True
    )
    return Markup(svg)


@router.api_route(f"{PREFIX}/till", methods=["GET", "HEAD"])
async def till(desk: Desk = Depends(require("staff"))) -> Response:
    """Choose a card (and worth, lifetime), or show its current code."""
    query = desk.request.query_params
    cards = await read(desk, _cards)
    if not query.get("card"):
        return desk.render("till.html", cards=cards, shown=None, ttl_choices=TTL_CHOICES)
    try:
        body = model_from(
            CreateCode,
            {
                "cardIdx": _number(query.get("card"), 0),
                "stamps": _number(query.get("stamps"), 1),
                "ttlSec": _number(query.get("ttl"), DEFAULT_TTL),
            },
        )
        async with desk.runtime.db.write() as conn:
            code, view = await codes.till_code(
                conn, desk.context(), shown=desk.request.cookies.get(COOKIE_TILL), body=body
            )
    except StampbookError as refusal:
        if refusal.http_status not in (200, 400):
            raise
        return desk.render(
            "till.html",
            status=409 if refusal.http_status == 200 else 400,
            cards=cards,
            shown=None,
            ttl_choices=TTL_CHOICES,
            error=refusal.message(desk.lang),
        )
    desk.set_cookie(COOKIE_TILL, code, max_age=TILL_COOKIE_SECONDS)
    url = codes.code_url(desk.runtime.settings.public_url, code)
    return desk.render(
        "till.html",
        cards=cards,
        shown=view,
        url=url,
        qr=qr_svg(url, desk.t("till_qr_alt")),
        poll_url=f"{desk.request.url.path}?{desk.request.url.query}",
        poll_seconds=POLL_SECONDS,
        refresh_seconds=REFRESH_SECONDS,
        ttl_choices=TTL_CHOICES,
    )


async def _cards(conn: AsyncConnection, ctx: CallContext) -> list[dict[str, Any]]:
    return await card_choices(conn, ctx)
