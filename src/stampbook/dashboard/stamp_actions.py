"""What staff and owners do to a customer's stamp: add, remove, redeem, edit
its fields, reset the customer's PIN, switch it off or on, delete it (owner,
confirmed) and issue the next card after a redemption.

Each action is the API's own service function (same rules, the ledger with
source DASHBOARD and the user, outbox webhooks), run once per form by
``forms.perform``. A refusal shows the stamp page again with the API's message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import FormData
from starlette.responses import Response

from stampbook.dashboard.forms import model_from, optional_text, perform, whole_number
from stampbook.dashboard.stamp_pages import STAMP_TEXT_FIELDS, detail_page, load_detail
from stampbook.dashboard.web import PREFIX, DashRoute, Desk, NotFound, require
from stampbook.kit.context import CallContext
from stampbook.kit.errors import Code, StampbookError
from stampbook.page.web import text_field
from stampbook.stamps import repository as stamp_repo
from stampbook.stamps import service as stamps
from stampbook.stamps.schemas import CreateStamp, UpdateStamp

router = APIRouter(route_class=DashRoute, include_in_schema=False, tags=["dashboard"])

Work = Callable[[AsyncConnection, CallContext], Awaitable[Any]]


async def _row(conn: AsyncConnection, ctx: CallContext, stamp_idx: int) -> Any:
    row = await stamp_repo.view(conn, account_idx=ctx.account_idx, stamp_idx=stamp_idx)
    if row is None:
        raise StampbookError(Code.STAMP_NOT_FOUND)
    return row


def _add(stamp_idx: int, form: FormData) -> Work:
    return lambda conn, ctx: stamps.add(conn, ctx, stamp_idx=stamp_idx)


def _remove(stamp_idx: int, form: FormData) -> Work:
    return lambda conn, ctx: stamps.remove(conn, ctx, stamp_idx=stamp_idx)


def _redeem(stamp_idx: int, form: FormData) -> Work:
    async def work(conn: AsyncConnection, ctx: CallContext) -> None:
        # A signed-in user is trusted with the card's on-site password (the
        # card page shows it to owners): the service's check passes with it.
        row = await _row(conn, ctx, stamp_idx)
        await stamps.redeem(conn, ctx, stamp_idx=stamp_idx, onsite_pwd=row.onsite_pwd)

    return work


def _update(stamp_idx: int, form: FormData) -> Work:
    async def work(conn: AsyncConnection, ctx: CallContext) -> None:
        values: dict[str, Any] = {name: optional_text(form, name) for name in STAMP_TEXT_FIELDS}
        if values["userId"] is None:
            del values["userId"]  # a stamp always has one: left empty keeps it
        chosen = {
            "stampIdx": stamp_idx,
            "cardIdx": whole_number(form, "cardIdx"),
            "strtYmd": text_field(form, "strtYmd") or None,
            "endYmd": text_field(form, "endYmd") or None,
            "activeYn": text_field(form, "activeYn") or None,
        }
        # Empty text fields clear them; the others are only sent when given.
        sent = {**values, **{k: v for k, v in chosen.items() if v is not None}}
        await stamps.update(conn, ctx, model_from(UpdateStamp, sent))

    return work


def _setting(**fields: Any) -> Callable[[int, FormData], Work]:
    def build(stamp_idx: int, form: FormData) -> Work:
        body = {"stampIdx": stamp_idx, **fields}
        return lambda conn, ctx: stamps.update(conn, ctx, model_from(UpdateStamp, body))

    return build


def _next_card(stamp_idx: int, form: FormData) -> Work:
    async def work(conn: AsyncConnection, ctx: CallContext) -> int:
        row = await _row(conn, ctx, stamp_idx)
        if row.use_yn != "Y":
            raise StampbookError(Code.STAMP_NOT_COMPLETE)
        if row.next_stamp_idx is not None:
            # Renewed already (an autoRenewYn card, or this button before):
            # the customer has their next card; a second would be a duplicate.
            return int(row.next_stamp_idx)
        length = max(row.end_ymd - row.strt_ymd, timedelta(days=1))
        body = {
            "cardIdx": row.card_idx,
            "strtYmd": ctx.today,
            "endYmd": ctx.today + length,
            "userId": row.user_id,
            "userNm": row.user_nm,
            "userPhnno": row.user_phnno,
            "userEml": row.user_eml,
            "userEtc1": row.user_etc1,
            "userEtc2": row.user_etc2,
        }
        issued = await stamps.create(conn, ctx, model_from(CreateStamp, body))
        await stamp_repo.update_fields(
            conn,
            account_idx=ctx.account_idx,
            stamp_idx=stamp_idx,
            values={"next_stamp_idx": issued},
        )
        return issued

    return work


# action name -> (build the work, the notice on success); staff may do all of
# these (deleting is the owner's, below).
ACTIONS: dict[str, tuple[Callable[[int, FormData], Work], str]] = {
    "add": (_add, "added"),
    "remove": (_remove, "removed"),
    "redeem": (_redeem, "redeemed"),
    "update": (_update, "updated"),
    "reset-pin": (_setting(resetPinYn="Y"), "pin_reset"),
    "deactivate": (_setting(activeYn="N"), "updated"),
    "activate": (_setting(activeYn="Y"), "updated"),
    "next": (_next_card, "issued"),
}


@router.post(f"{PREFIX}/stamps/{{stamp_idx:int}}/delete")
async def delete_stamp(stamp_idx: int, desk: Desk = Depends(require("owner"))) -> Response:
    """Delete a stamp for good (owner, with the confirmation box ticked)."""
    form = await desk.form()
    detail = await load_detail(desk, stamp_idx)  # 404 for another account's id
    if text_field(form, "confirm") != "yes":
        return detail_page(desk, detail, status=400, error=desk.t("confirm_needed"))
    outcome = await perform(
        desk, form, lambda conn, ctx: stamps.delete(conn, ctx, stamp_idx=stamp_idx)
    )
    if outcome.refusal is not None:
        return detail_page(desk, detail, status=409, error=outcome.refusal.message(desk.lang))
    return desk.redirect(f"{PREFIX}/customers?done=deleted")


@router.post(f"{PREFIX}/stamps/{{stamp_idx:int}}/{{action}}")
async def stamp_action(
    stamp_idx: int, action: str, desk: Desk = Depends(require("staff"))
) -> Response:
    """One action on a stamp, then back to it (303) with what happened."""
    chosen = ACTIONS.get(action)
    if chosen is None:
        raise NotFound
    form = await desk.form()
    await load_detail(desk, stamp_idx)  # 404 for another account's id
    build, notice = chosen
    outcome = await perform(desk, form, build(stamp_idx, form))
    if outcome.repeated:
        return desk.redirect(f"{PREFIX}/stamps/{stamp_idx}?done=repeated")
    if outcome.refusal is not None:
        detail = await load_detail(desk, stamp_idx)
        return detail_page(desk, detail, status=409, error=outcome.refusal.message(desk.lang))
    if action == "next":
        return desk.redirect(f"{PREFIX}/stamps/{outcome.value}?done=issued")
    return desk.redirect(f"{PREFIX}/stamps/{stamp_idx}?done={notice}")
