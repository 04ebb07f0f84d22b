"""Receipt codes: create, list, revoke, and the claim that adds a code's stamps.

A code is 128 random bits (``secrets.token_urlsafe(16)``), shown once (its
URL ``{PUBLIC_URL}/c/{code}``) and stored only as its SHA-256. A claim is the
code row's conditional UPDATE (unused, not revoked, not expired, this card)
followed by the stamps room's own add (same rules, ledger with ``source =
CODE`` and the code's idx, outbox), inside one savepoint of the caller's
transaction: a refused add undoes the claim, so a refused claim changes
nothing, and of concurrent claims of one code exactly one matches the row.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.cards import repository as card_repo
from stampbook.codes import repository as repo
from stampbook.codes.schemas import CreateCode
from stampbook.kit.clock import format_ymdt
from stampbook.kit.context import SOURCE_CODE, CallContext
from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.pages import page
from stampbook.kit.params import decode_cursor
from stampbook.stamps import repository as stamp_repo
from stampbook.stamps import service as stamps
from stampbook.stamps.schemas import CreateStamp

CODE_BYTES = 16  # 128 random bits
# A card issued from a code ("Get a card") is valid for a year from today.
ENROL_DAYS = 365

STATE_LIVE = "live"
STATE_USED = "used"
STATE_EXPIRED = "expired"
STATE_REVOKED = "revoked"
_REFUSAL = {
    STATE_USED: Code.CODE_USED,
    STATE_EXPIRED: Code.CODE_EXPIRED,
    STATE_REVOKED: Code.CODE_REVOKED,
}


def new_code() -> str:
    """A fresh code: 128 random bits, URL-safe (22 characters)."""
    return secrets.token_urlsafe(CODE_BYTES)


def code_hash(code: str) -> str:
    """What is stored of a code: its SHA-256, hex (codes are random, so no salt
    is needed, and a lookup is one indexed equality)."""
    return hashlib.sha256(code.encode()).hexdigest()


def code_url(public_url: str, code: str) -> str:
    """The customer's address of a code."""
    return f"{public_url.rstrip('/')}/c/{code}"


def state_of(row: Any, ctx: CallContext) -> str:
    """live, used, revoked or expired (in that order of precedence)."""
    if row.used_at is not None:
        return STATE_USED
    if row.revoked_at is not None:
        return STATE_REVOKED
    if row.expires_at <= ctx.now_naive:
        return STATE_EXPIRED
    return STATE_LIVE


def claim_refusal(row: Any | None, ctx: CallContext, *, card_idx: int | None) -> Code | None:
    """Why the code cannot be claimed now for a stamp of ``card_idx`` (None: any
    card of the code's), or None. Another account's code is unknown here."""
    if row is None or row.account_idx != ctx.account_idx:
        return Code.CODE_UNKNOWN
    state = state_of(row, ctx)
    if state != STATE_LIVE:
        return _REFUSAL[state]
    if card_idx is not None and row.card_idx != card_idx:
        return Code.CODE_WRONG_CARD
    return None


def render_code(row: Any, ctx: CallContext) -> dict[str, Any]:
    """A code as list shows it (never the code itself: only its hash is kept)."""
    return {
        "codeIdx": row.code_idx,
        "cardIdx": row.card_idx,
        "cardNm": row.card_nm,
        "stamps": row.stamps,
        "memo": row.memo,
        "state": state_of(row, ctx),
        "expiresYmdt": format_ymdt(row.expires_at, ctx.zone),
        "usedYmdt": format_ymdt(row.used_at, ctx.zone) if row.used_at else None,
        "usedStampIdx": row.used_stamp_idx,
        "regYmdt": format_ymdt(row.reg_ymdt, ctx.zone),
    }


async def create(conn: AsyncConnection, ctx: CallContext, body: CreateCode) -> dict[str, Any]:
    """A new single-use code for one of the account's cards."""
    if await card_repo.get(conn, account_idx=ctx.account_idx, card_idx=body.cardIdx) is None:
        raise StampbookError(Code.CARD_NOT_FOUND)
    code = new_code()
    row = await repo.insert_code(
        conn,
        {
            "account_idx": ctx.account_idx,
            "card_idx": body.cardIdx,
            "code_hash": code_hash(code),
            "stamps": body.stamps,
            "memo": body.memo,
            "key_idx": ctx.key_idx,
            "expires_at": ctx.now_naive + timedelta(seconds=body.ttlSec),
            "reg_ymdt": ctx.now_naive,
        },
    )
    return {
        "codeIdx": row.code_idx,
        "code": code,
        "url": code_url(ctx.public_url, code),
        "expiresYmdt": format_ymdt(row.expires_at, ctx.zone),
    }


async def get(conn: AsyncConnection, ctx: CallContext, *, code_idx: int) -> dict[str, Any]:
    """One of the account's codes (2406 when it has none by that idx)."""
    row = await repo.by_idx(conn, account_idx=ctx.account_idx, code_idx=code_idx)
    if row is None:
        raise StampbookError(Code.CODE_NOT_FOUND)
    return render_code(row, ctx)


async def list_codes(
    conn: AsyncConnection, ctx: CallContext, *, card_idx: int | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    """A page of the account's codes, newest first."""
    rows = await repo.list_codes(
        conn,
        account_idx=ctx.account_idx,
        card_idx=card_idx,
        limit=limit,
        before_idx=decode_cursor(cursor),
    )
    return page(
        rows,
        limit=limit,
        render=lambda row: render_code(row, ctx),
        idx_of=lambda row: int(row.code_idx),
    )


async def revoke(conn: AsyncConnection, ctx: CallContext, *, code_idx: int) -> None:
    """Revoke an unused code: it can no longer be claimed."""
    if await repo.revoke(conn, account_idx=ctx.account_idx, code_idx=code_idx, now=ctx.now_naive):
        return
    row = await repo.by_idx(conn, account_idx=ctx.account_idx, code_idx=code_idx)
    if row is None:
        raise StampbookError(Code.CODE_NOT_FOUND)
    raise StampbookError(Code.CODE_USED if row.used_at is not None else Code.CODE_REVOKED)


async def claim(conn: AsyncConnection, ctx: CallContext, *, code: str, stamp_idx: int) -> None:
    """Add the code's stamps to ``stamp_idx`` (a stamp of the code's card), once."""
    row = await stamp_repo.view(conn, account_idx=ctx.account_idx, stamp_idx=stamp_idx)
    if row is None:
        raise StampbookError(Code.STAMP_NOT_FOUND)
    await _claim_for(conn, ctx, code=code, stamp_idx=stamp_idx, card_idx=int(row.card_idx))


async def enrol(conn: AsyncConnection, ctx: CallContext, *, code: str) -> Row[Any]:
    """ "Get a card": a new stamp of the code's card (valid for ``ENROL_DAYS``)
    with the code's stamps on it; its view row. Nothing is issued when the
    code cannot be claimed."""
    found = await repo.by_hash(conn, code_hash=code_hash(code))
    refusal = claim_refusal(found, ctx, card_idx=None)
    if refusal is not None or found is None:
        raise StampbookError(refusal or Code.CODE_UNKNOWN)
    async with conn.begin_nested():
        body = CreateStamp.model_construct(
            cardIdx=int(found.card_idx),
            strtYmd=ctx.today,
            endYmd=ctx.today + timedelta(days=ENROL_DAYS),
            activeYn="Y",
        )
        issued = await stamps.issue(conn, _as_code(ctx), body)
        await _claim_for(
            conn, ctx, code=code, stamp_idx=int(issued.stamp_idx), card_idx=int(found.card_idx)
        )
    return issued


async def _claim_for(
    conn: AsyncConnection, ctx: CallContext, *, code: str, stamp_idx: int, card_idx: int
) -> None:
    hashed = code_hash(code)
    # The savepoint undoes the claim when the add refuses (card full, daily
    # limit, ...): the caller's transaction commits refusals with their
    # stored idempotent response, and the code must stay unclaimed.
    async with conn.begin_nested():
        claimed = await repo.claim(
            conn,
            code_hash=hashed,
            account_idx=ctx.account_idx,
            card_idx=card_idx,
            stamp_idx=stamp_idx,
            now=ctx.now_naive,
        )
        if claimed is None:
            found = await repo.by_hash(conn, code_hash=hashed)
            raise StampbookError(claim_refusal(found, ctx, card_idx=card_idx) or Code.CODE_USED)
        await stamps.add(
            conn,
            _as_code(ctx),
            stamp_idx=stamp_idx,
            count=int(claimed.stamps),
            code_idx=int(claimed.code_idx),
        )


def _as_code(ctx: CallContext) -> CallContext:
    return replace(ctx, source=SOURCE_CODE)


async def till_code(
    conn: AsyncConnection, ctx: CallContext, *, shown: str | None, body: CreateCode
) -> tuple[str, dict[str, Any]]:
    """The code a till screen shows: ``shown`` (the one it showed last) while
    it is live and for the same card and worth, else a new one. The code and
    its view (``render_code``)."""
    if shown:
        row = await repo.by_hash(conn, code_hash=code_hash(shown))
        if (
            row is not None
            and claim_refusal(row, ctx, card_idx=body.cardIdx) is None
            and row.stamps == body.stamps
        ):
            return shown, render_code(row, ctx)
    created = await create(conn, ctx, body)
    row = await repo.by_idx(conn, account_idx=ctx.account_idx, code_idx=created["codeIdx"])
    return str(created["code"]), render_code(row, ctx)
