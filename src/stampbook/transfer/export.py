"""Export of an account's stamps, in the files ``stampbook import`` reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from stampbook.kit.context import CallContext
from stampbook.kit.db import Database
from stampbook.stamps import repository as stamp_repo
from stampbook.stamps.views import render_stamp

EXPORT_PAGE = 500


def export_object(row: Any, ctx: CallContext) -> dict[str, Any]:
    """A stamp as the files hold it: the stamp object with the card's on-site
    password (the file must be able to recreate the card) and ``useYn``."""
    view = render_stamp(row, public_url=ctx.public_url, zone=ctx.zone, secrets=True)
    return {**view, "useYn": row.use_yn}


async def export_stamps(db: Database, ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
    """Every stamp of the account, newest first (as ``list``), read in pages
    on one connection (one snapshot on SQLite)."""
    before: int | None = None
    async with db.read() as conn:
        while True:
            rows = await stamp_repo.list_views(
                conn,
                account_idx=ctx.account_idx,
                card_idx=None,
                user_id=None,
                active_yn=None,
                use_yn=None,
                limit=EXPORT_PAGE,
                before_idx=before,
            )
            for row in rows[:EXPORT_PAGE]:
                yield export_object(row, ctx)
            if len(rows) <= EXPORT_PAGE:
                return
            before = int(rows[EXPORT_PAGE - 1].stamp_idx)
