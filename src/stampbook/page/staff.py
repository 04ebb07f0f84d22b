"""The staff's on-site actions at the counter: add one stamp, or redeem a
complete card, with the card's on-site password. Each action owns its
transaction, which commits refusals too, so wrong passwords stay counted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.kit.context import SOURCE_ONSITE, CallContext
from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.runtime import Runtime
from stampbook.page.service import (
    ONSITE_ADD,
    ONSITE_REDEEM,
    Loaded,
    context_for,
    find,
    load,
    zone_name,
)
from stampbook.stamps import onsite, rules
from stampbook.stamps import service as stamps


class StaleFormError(Exception):
    """The card changed between showing the staff form and sending it."""


async def onsite_action(
    conn: AsyncConnection,
    ctx: CallContext,
    row: Row[Any],
    *,
    action: str,
    password: str,
    expected_stamps: int | None,
    client_address: str,
) -> None:
    """Add one stamp or redeem the reward for staff at the counter.

    The same service as the API does the work (same rules, ledger with
    ``source = ONSITE``, webhooks). ``row`` is locked by this transaction, so
    ``expected_stamps`` (the count the staff saw) reliably stops a form sent
    twice from adding twice. The stamp's state is checked before the
    password, so a used or expired stamp link cannot be used to guess it;
    tries count on the page's counters for the card and ``client_address``
    (``stamps/onsite.py``). Raises ``StampbookError`` to refuse; the caller
    commits anyway, so that wrong passwords are counted.
    """
    if row.onsite_yn != "Y":
        raise StampbookError(Code.ONSITE_NOT_ENABLED)
    if action not in (ONSITE_ADD, ONSITE_REDEEM):
        raise StampbookError(Code.INVALID_PARAMETER, param="action")
    if expected_stamps is not None and expected_stamps != row.stamps:
        raise StaleFormError
    if action == ONSITE_ADD:
        refusal = rules.add_refusal(rules.state_of(row), ctx.today, ctx.now_ms)
        if refusal is not None:
            raise StampbookError(refusal)
        await onsite.check_password(conn, ctx, row, password, page_address=client_address)
        await stamps.add(conn, ctx, stamp_idx=row.stamp_idx)
    else:
        await stamps.redeem(
            conn, ctx, stamp_idx=row.stamp_idx, onsite_pwd=password, page_address=client_address
        )


@dataclass(frozen=True, slots=True)
class StaffOutcome:
    """What a staff form did: done, or the stamp as it now stands (None when it
    is gone) with why not: the card changed (``stale``) or a refusal."""

    done: bool = False
    loaded: Loaded | None = None
    stale: bool = False
    refusal: StampbookError | None = None


async def run_staff_action(
    runtime: Runtime,
    token: str,
    *,
    action: str,
    password: str,
    expected_stamps: int | None,
    page_address: str,
) -> StaffOutcome:
    """Run one staff action on the stamp behind ``token`` in its own
    transaction; when it was not done, read the stamp afresh to show again."""
    async with runtime.db.write() as conn:
        row = await find(conn, token, for_update=True)
        if row is None:
            return StaffOutcome()
        zone = await zone_name(conn, runtime, row)
        ctx = context_for(runtime, row, zone, source=SOURCE_ONSITE)
        stale = False
        refusal: StampbookError | None = None
        try:
            await onsite_action(
                conn,
                ctx,
                row,
                action=action,
                password=password,
                expected_stamps=expected_stamps,
                client_address=page_address,
            )
        except StampbookError as exc:
            if exc.http_status != 200 and exc.code != Code.INVALID_PARAMETER:
                raise
            # Committed on purpose, like the API's refusals: a wrong password
            # must stay counted so that guessing locks out.
            refusal = exc
        except StaleFormError:
            stale = True
    if not stale and refusal is None:
        return StaffOutcome(done=True)
    loaded = await load(runtime, token, page_address=page_address)
    return StaffOutcome(loaded=loaded, stale=stale, refusal=refusal)
