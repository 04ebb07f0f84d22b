"""A customer's stamp: the card as the customer sees it, its QR code and link,
the history timeline (who, when, what, before → after); and issuing a new one.
The actions on it are ``stamp_actions.py``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from markupsafe import Markup
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from stampbook.accounts import users
from stampbook.dashboard.customers_pages import card_choices, issuing_choices
from stampbook.dashboard.forms import (
    Outcome,
    model_from,
    optional_text,
    perform,
    read,
    whole_number,
)
from stampbook.dashboard.web import PREFIX, DashRoute, Desk, NotFound, require
from stampbook.kit.context import CallContext
from stampbook.page.routes import qr_code
from stampbook.page.service import Card, card_view
from stampbook.page.web import text_field
from stampbook.stamps import repository as stamp_repo
from stampbook.stamps import rules, search
from stampbook.stamps import service as stamps
from stampbook.stamps.schemas import CreateStamp

router = APIRouter(route_class=DashRoute, include_in_schema=False, tags=["dashboard"])
HISTORY_SHOWN = 50
DEFAULT_VALID_DAYS = 365
DONE = {
    "added": "done_added",
    "removed": "done_removed",
    "redeemed": "done_redeemed",
    "updated": "done_updated",
    "pin_reset": "done_pin_reset",
    "issued": "done_issued",
    "repeated": "done_repeated",
}


@dataclass(frozen=True, slots=True)
class Event:
    """One ledger row as the timeline shows it."""

    when: str
    action: str
    before: int
    after: int
    source: str
    who: str | None


@dataclass(frozen=True, slots=True)
class Detail:
    """Everything the stamp page shows."""

    row: Row[Any]
    card: Card
    state: str
    events: list[Event]
    cards: list[dict[str, Any]]
    # (stamps today, the card's threshold) when past it: the suspicious flag.
    suspicious: tuple[int, int] | None = None


async def load_detail(desk: Desk, stamp_idx: int) -> Detail:
    """The stamp of this account with its timeline; 404 for any other id."""

    async def work(conn: AsyncConnection, ctx: CallContext) -> Detail:
        row = await stamp_repo.view(conn, account_idx=ctx.account_idx, stamp_idx=stamp_idx)
        if row is None:
            raise NotFound
        ledger = await stamp_repo.history(
            conn,
            account_idx=ctx.account_idx,
            stamp_idx=stamp_idx,
            limit=HISTORY_SHOWN,
            before_idx=None,
        )
        people = {
            u.user_idx: u.email for u in await users.list_users(conn, account_idx=ctx.account_idx)
        }
        events = [
            Event(
                when=desk.local(e.reg_ymdt),
                action=e.action,
                before=e.stamps_before,
                after=e.stamps_after,
                source=e.source,
                who=people.get(e.user_idx) if e.user_idx is not None else None,
            )
            for e in ledger[:HISTORY_SHOWN]
        ]
        card = card_view(
            row,
            today=ctx.today,
            now=ctx.now_naive,
            public_url=ctx.public_url,
            unlocked=True,
        )
        state = search.state_of_stamp(rules.state_of(row), ctx.today)
        today_adds = rules.adds_on(rules.state_of(row), ctx.today)
        threshold = int(row.suspicious_adds_per_day)
        flag = (today_adds, threshold) if rules.suspicious(today_adds, threshold) else None
        return Detail(row, card, state, events, await card_choices(conn, ctx), flag)

    return await read(desk, work)


def detail_page(
    desk: Desk, detail: Detail, *, status: int = 200, error: str | None = None
) -> Response:
    """The stamp page (again, with a refusal when ``error``)."""
    svg = qr_code(detail.card.page_url).svg_inline(
        scale=4, dark="#1c1917", light="#ffffff", title=desk.t("qr_alt"), omitsize=True
    )
    done = DONE.get(desk.request.query_params.get("done", ""))
    return desk.render(
        "stamp.html",
        status=status,
        d=detail,
        s=detail.row,
        card=detail.card,
        card_level=2,
        qr_svg=Markup(svg),
        # The wallets' links, to hand to the customer (docs/wallet.md).
        wallet_apple=desk.runtime.settings.apple_wallet,
        wallet_google=desk.runtime.settings.google_wallet,
        notice=desk.t(done) if done else None,
        error=error,
    )


@router.api_route(f"{PREFIX}/stamps/{{stamp_idx:int}}", methods=["GET", "HEAD"])
async def stamp_page(stamp_idx: int, desk: Desk = Depends(require("staff"))) -> Response:
    """One customer's stamp."""
    return detail_page(desk, await load_detail(desk, stamp_idx))


def _new_form(
    desk: Desk, cards: list[dict[str, Any]], values: dict[str, Any], **extra: Any
) -> Response:
    return desk.render("stamp_new.html", cards=cards, v=values, **extra)


@router.api_route(f"{PREFIX}/stamps/new", methods=["GET", "HEAD"])
async def new_stamp_form(request: Request, desk: Desk = Depends(require("staff"))) -> Response:
    """The form that issues a new stamp card to a customer."""

    async def work(conn: AsyncConnection, ctx: CallContext) -> tuple[list[dict[str, Any]], Any]:
        return await issuing_choices(conn, ctx), ctx.today

    cards, today = await read(desk, work)
    values = {
        "cardIdx": request.query_params.get("card", ""),
        "strtYmd": today.isoformat(),
        "endYmd": (today + timedelta(days=DEFAULT_VALID_DAYS)).isoformat(),
    }
    return _new_form(desk, cards, values)


STAMP_TEXT_FIELDS = ("userId", "userNm", "userPhnno", "userEml", "userEtc1", "userEtc2", "memo")


@router.post(f"{PREFIX}/stamps/new")
async def new_stamp(desk: Desk = Depends(require("staff"))) -> Response:
    """Issue a stamp through the same service as the API's create."""
    form = await desk.form()
    values: dict[str, Any] = {name: optional_text(form, name) for name in STAMP_TEXT_FIELDS}
    values.update(
        cardIdx=text_field(form, "cardIdx"),
        strtYmd=text_field(form, "strtYmd"),
        endYmd=text_field(form, "endYmd"),
    )

    async def work(conn: AsyncConnection, ctx: CallContext) -> int:
        body = {**values, "cardIdx": whole_number(form, "cardIdx")}
        return await stamps.create(conn, ctx, model_from(CreateStamp, body))

    outcome: Outcome[int] = await perform(desk, form, work)
    if outcome.repeated:
        return desk.redirect(f"{PREFIX}/customers")
    if outcome.refusal is not None:
        cards = await read(desk, issuing_choices)
        return _new_form(desk, cards, values, status=409, error=outcome.refusal.message(desk.lang))
    return desk.redirect(f"{PREFIX}/stamps/{outcome.value}?done=issued")
