"""The customer's side of a code (``/c/{code}``): what the page offers, the
one-tap claim onto a card this browser holds, and "Get a card". Each step
owns its transaction, as ``page/pin.py`` does; the work is ``codes.service``'s."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.codes import repository as repo
from stampbook.codes import service
from stampbook.kit.context import SOURCE_CODE, CallContext
from stampbook.kit.runtime import Runtime
from stampbook.page.service import context_for, zone_name
from stampbook.stamps import repository as stamp_repo
from stampbook.stamps import rules

# Codes are secrets.token_urlsafe(16); anything that could not be one is not
# looked up.
CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")


@dataclass(frozen=True, slots=True)
class Held:
    """A card of the code's shop this browser holds."""

    token: str
    name: str
    stamps: int
    max_stamps: int
    can_add: bool
    used_this_code: bool


@dataclass(frozen=True, slots=True)
class CodeLook:
    """What ``/c/{code}`` shows: the code's state and card, and the browser's cards of it."""

    state: str
    card_name: str
    stamps: int
    held: tuple[Held, ...]
    # False: the card is deactivated, so "Get a card" is not offered (2105).
    can_issue: bool = True


async def _context(conn: AsyncConnection, runtime: Runtime, row: Any) -> CallContext:
    return context_for(runtime, row, await zone_name(conn, runtime, row), source=SOURCE_CODE)


async def look(runtime: Runtime, code: str, tokens: list[str]) -> CodeLook | None:
    """The code's page, or None for an unknown code."""
    if not CODE_PATTERN.fullmatch(code):
        return None
    async with runtime.db.read() as conn:
        found = await repo.by_hash(conn, code_hash=service.code_hash(code))
        if found is None:
            return None
        ctx = await _context(conn, runtime, found)
        held: list[Held] = []
        for token in tokens:
            row = await stamp_repo.view_by_token(conn, token=token)
            if row is None or (row.account_idx, row.card_idx) != (
                found.account_idx,
                found.card_idx,
            ):
                continue
            refusal = rules.add_refusal(rules.state_of(row), ctx.today, ctx.now_ms, found.stamps)
            held.append(
                Held(
                    token=row.token,
                    name=row.card_nm,
                    stamps=row.stamps,
                    max_stamps=row.max_stamps,
                    can_add=refusal is None,
                    used_this_code=found.used_stamp_idx == row.stamp_idx,
                )
            )
    return CodeLook(
        state=service.state_of(found, ctx),
        card_name=found.card_nm,
        stamps=found.stamps,
        held=tuple(held),
        can_issue=rules.issue_refusal(found.card_active_yn) is None,
    )


async def claim_onto(runtime: Runtime, code: str, token: str) -> str | None:
    """Add the code's stamps to the browser's card ``token``; its token, or None
    when there is no such code or card. Raises ``StampbookError`` to refuse
    (then nothing changed)."""
    if not CODE_PATTERN.fullmatch(code):
        return None
    async with runtime.db.write() as conn:
        found = await repo.by_hash(conn, code_hash=service.code_hash(code))
        row = await stamp_repo.view_by_token(conn, token=token)
        if found is None or row is None or row.account_idx != found.account_idx:
            return None
        ctx = await _context(conn, runtime, found)
        await service.claim(conn, ctx, code=code, stamp_idx=int(row.stamp_idx))
    return str(row.token)


async def get_card(runtime: Runtime, code: str) -> str | None:
    """ "Get a card": a new stamp of the code's card with its stamps; the new
    page's token, or None for an unknown code. Raises ``StampbookError`` to
    refuse (then nothing was issued)."""
    if not CODE_PATTERN.fullmatch(code):
        return None
    async with runtime.db.write() as conn:
        found = await repo.by_hash(conn, code_hash=service.code_hash(code))
        if found is None:
            return None
        ctx = await _context(conn, runtime, found)
        issued = await service.enrol(conn, ctx, code=code)
    return str(issued.token)
