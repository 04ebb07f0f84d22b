"""The stamp reads that page through many rows: the account's stamps and one
stamp's ledger (history)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.kit.clock import format_ymdt
from stampbook.kit.context import CallContext
from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.pages import page
from stampbook.kit.params import decode_cursor
from stampbook.stamps import repository as repo
from stampbook.stamps.views import render_stamp


async def list_stamps(
    conn: AsyncConnection,
    ctx: CallContext,
    *,
    card_idx: int | None,
    user_id: str | None,
    active_yn: str | None,
    use_yn: str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """A page of the account's stamps, newest first."""
    rows = await repo.list_views(
        conn,
        account_idx=ctx.account_idx,
        card_idx=card_idx,
        user_id=user_id,
        active_yn=active_yn,
        use_yn=use_yn,
        limit=limit,
        before_idx=decode_cursor(cursor),
    )
    return page(
        rows,
        limit=limit,
        render=lambda row: render_stamp(row, public_url=ctx.public_url, zone=ctx.zone),
        idx_of=lambda row: int(row.stamp_idx),
    )


def render_event(row: Any, zone: Any) -> dict[str, Any]:
    """One ledger row as the history endpoint shows it."""
    return {
        "eventIdx": row.event_idx,
        "stampIdx": row.stamp_idx,
        "action": row.action,
        "stampsBefore": row.stamps_before,
        "stampsAfter": row.stamps_after,
        "source": row.source,
        "regYmdt": format_ymdt(row.reg_ymdt, zone),
        # The receipt code a CODE change claimed (null otherwise).
        "codeIdx": row.code_idx,
    }


async def history(
    conn: AsyncConnection, ctx: CallContext, *, stamp_idx: int, limit: int, cursor: str | None
) -> dict[str, Any]:
    """A page of a stamp's ledger, newest first."""
    before = decode_cursor(cursor)
    if not await repo.exists(conn, account_idx=ctx.account_idx, stamp_idx=stamp_idx):
        raise StampbookError(Code.STAMP_NOT_FOUND)
    rows = await repo.history(
        conn, account_idx=ctx.account_idx, stamp_idx=stamp_idx, limit=limit, before_idx=before
    )
    return page(
        rows,
        limit=limit,
        render=lambda row: render_event(row, ctx.zone),
        idx_of=lambda row: int(row.event_idx),
    )
