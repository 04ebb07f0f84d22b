"""Cards: the templates a business defines (an extension; the hosted service
keeps them in its dashboard)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.cards import repository as repo
from stampbook.cards.schemas import CreateCard, UpdateCard
from stampbook.kit.clock import format_ymdt
from stampbook.kit.context import CallContext
from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.pages import page
from stampbook.kit.params import decode_cursor
from stampbook.stamps import repository as stamp_repo
from stampbook.stats import rollups

# Wire name → column, for the fields that map one to one.
_COLUMNS = {
    "cardNm": "card_nm",
    "cardTtl": "card_ttl",
    "maxStamps": "max_stamps",
    "url": "url",
    "stampImgUrl": "stamp_img_url",
    "onsiteYn": "onsite_yn",
    "onsitePwd": "onsite_pwd",
    "minIntervalSec": "min_interval_sec",
    "autoRenewYn": "auto_renew_yn",
    "maxAddsPerDay": "max_adds_per_day",
    "suspiciousAddsPerDay": "suspicious_adds_per_day",
    # 'N' stops new stamps (stamps/rules.issue_refusal); issued ones keep working.
    "activeYn": "active_yn",
}


def render_card(row: Any, zone: Any) -> dict[str, Any]:
    """The card object."""
    return {
        "cardIdx": row.card_idx,
        "cardNm": row.card_nm,
        "cardTtl": row.card_ttl,
        "maxStamps": row.max_stamps,
        "url": row.url,
        "stampImgUrl": row.stamp_img_url,
        "onsiteYn": row.onsite_yn,
        "onsitePwd": row.onsite_pwd,
        "minIntervalSec": row.min_interval_sec,
        "regYmdt": format_ymdt(row.reg_ymdt, zone),
        "autoRenewYn": row.auto_renew_yn,
        "maxAddsPerDay": row.max_adds_per_day,
        "suspiciousAddsPerDay": row.suspicious_adds_per_day,
        "activeYn": row.active_yn,
    }


def _require_password(onsite_yn: str | None, onsite_pwd: str | None) -> None:
    if onsite_yn == "Y" and not onsite_pwd:
        raise StampbookError(Code.INVALID_PARAMETER, param="onsitePwd")


async def _existing(
    conn: AsyncConnection, ctx: CallContext, card_idx: int, *, for_update: bool = False
) -> Any:
    row = await repo.get(
        conn, account_idx=ctx.account_idx, card_idx=card_idx, for_update=for_update
    )
    if row is None:
        raise StampbookError(Code.CARD_NOT_FOUND)
    return row


async def create(
    conn: AsyncConnection, ctx: CallContext, body: CreateCard, *, card_idx: int | None = None
) -> int:
    """Define a card; returns the new cardIdx (``card_idx`` when given: an import
    keeping the hosted service's numbers, which checked that it is free)."""
    _require_password(body.onsiteYn, body.onsitePwd)
    values = {column: getattr(body, field) for field, column in _COLUMNS.items()}
    if card_idx is not None:
        values["card_idx"] = card_idx
    return await repo.insert_card(
        conn, {**values, "account_idx": ctx.account_idx, "reg_ymdt": ctx.now_naive}
    )


async def update(conn: AsyncConnection, ctx: CallContext, body: UpdateCard) -> None:
    """Change only the fields sent; maxStamps never below an issued stamp's count."""
    row = await _existing(conn, ctx, body.cardIdx, for_update=True)
    sent = body.model_fields_set
    values = {column: getattr(body, field) for field, column in _COLUMNS.items() if field in sent}
    _require_password(
        values.get("onsite_yn", row.onsite_yn), values.get("onsite_pwd", row.onsite_pwd)
    )
    new_max: int = values.get("max_stamps", row.max_stamps)
    changes_max = new_max != row.max_stamps
    if changes_max:
        # Adds in flight commit first; later ones wait for this transaction
        # and then see the new maximum on the stamp row itself.
        await stamp_repo.lock_card_stamps(conn, card_idx=body.cardIdx)
        if await repo.highest_count(conn, card_idx=body.cardIdx) > new_max:
            raise StampbookError(Code.MAX_STAMPS_BELOW_COUNT)
    if changes_max:  # the statistics judge completions against the card's maximum
        await rollups.before_card_maximum(conn, account_idx=ctx.account_idx, card_idx=body.cardIdx)
    if values:
        await repo.update_card(
            conn, account_idx=ctx.account_idx, card_idx=body.cardIdx, values=values
        )
    if changes_max:
        await rollups.after_card_maximum(conn, account_idx=ctx.account_idx, card_idx=body.cardIdx)
        await stamp_repo.set_card_maximum(conn, card_idx=body.cardIdx, max_stamps=new_max)


async def get(conn: AsyncConnection, ctx: CallContext, *, card_idx: int) -> dict[str, Any]:
    """One card."""
    return render_card(await _existing(conn, ctx, card_idx), ctx.zone)


async def list_cards(
    conn: AsyncConnection, ctx: CallContext, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """A page of the account's cards, newest first."""
    rows = await repo.list_cards(
        conn, account_idx=ctx.account_idx, limit=limit, before_idx=decode_cursor(cursor)
    )
    return page(
        rows,
        limit=limit,
        render=lambda row: render_card(row, ctx.zone),
        idx_of=lambda row: int(row.card_idx),
    )


async def delete(conn: AsyncConnection, ctx: CallContext, *, card_idx: int) -> None:
    """Delete a card; refused with 2102 while stamps exist on it."""
    await _existing(conn, ctx, card_idx, for_update=True)
    if await repo.has_stamps(conn, card_idx=card_idx):
        raise StampbookError(Code.CARD_IN_USE)
    try:
        async with conn.begin_nested():
            await repo.delete_card(conn, account_idx=ctx.account_idx, card_idx=card_idx)
    except IntegrityError as exc:
        # A stamp was issued on the card concurrently: the foreign key won.
        raise StampbookError(Code.CARD_IN_USE) from exc
