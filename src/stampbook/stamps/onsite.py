"""The on-site password and its lockout.

The password is the card's, so wrong guesses are counted per card, never per
stamp (N stamp links would give N times the tries). Who guesses decides which
counters a try counts on:

- on the stamp page (anonymous): the card's page counter and the client
  address's counter (``STAMPBOOK_LOCKOUT_FAILURES`` and
  ``STAMPBOOK_LOCKOUT_ADDRESS_FAILURES``); the second stops one client from
  spreading guesses over many cards;
- through the API (a caller with a valid key): the card's API counter, with
  the same limit as the page's. It is never shared with the page's, so
  anonymous guesses on the page can never lock the merchant's own ``redeem``.

A count runs for one lock period (``STAMPBOOK_LOCKOUT_MINUTES``) from its
first failure; reaching the limit locks the counter for that long, and a lock
that has run out starts afresh. A right password clears the card's counter,
not the address's (a client that knows one card's password must not wipe
its guesses at others). Counters are claimed (row-locked) before the
password is compared, so parallel guesses queue and none goes uncounted.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.kit.context import CallContext
from stampbook.kit.errors import Code, StampbookError
from stampbook.stamps import lockout_repository as lockout_repo

SCOPE_API_CARD = "api_card"
SCOPE_PAGE_CARD = "page_card"
SCOPE_PAGE_ADDRESS = "page_address"


@dataclass(frozen=True, slots=True)
class Counter:
    """One failure counter a try counts on."""

    scope: str
    subject: str
    limit: int
    cleared_by_success: bool


def counters(ctx: CallContext, card_idx: int, page_address: str | None) -> tuple[Counter, ...]:
    """The counters of a try on ``card_idx``'s password: the API's (``page_address``
    None: a caller with a valid key) or the page's for that client address.
    Always in the same order (card first), so concurrent tries lock them alike."""
    if page_address is None:
        return (Counter(SCOPE_API_CARD, str(card_idx), ctx.lockout_failures, True),)
    return (
        Counter(SCOPE_PAGE_CARD, str(card_idx), ctx.lockout_failures, True),
        Counter(SCOPE_PAGE_ADDRESS, page_address, ctx.lockout_address_failures, False),
    )


def page_lock_keys(card_idx: int, page_address: str) -> list[tuple[str, str]]:
    """The (scope, subject) of the counters that can lock the page for this
    client on this card: what the staff page reads to show a lock."""
    return [(SCOPE_PAGE_CARD, str(card_idx)), (SCOPE_PAGE_ADDRESS, page_address)]


def _matches(row: Any, password: str | None) -> bool:
    expected = row.onsite_pwd or ""
    if password is None or not expected:
        return False
    # Bytes with surrogates escaped: any text a form or a body carried compares
    # (wrong) instead of failing to encode.
    given = password.encode("utf-8", "surrogatepass")
    return hmac.compare_digest(given, expected.encode("utf-8", "surrogatepass"))


def _after_failure(state: Any, counter: Counter, now: datetime, period: timedelta) -> Any:
    """(failures, window_start, locked_until) after one more wrong try."""
    window_over = state.window_start is None or state.window_start + period <= now
    lock_over = state.locked_until is not None and state.locked_until <= now
    if window_over or lock_over:
        failures, window_start = 1, now
    else:
        failures, window_start = state.failures + 1, state.window_start
    locked_until = now + period if failures >= counter.limit else None
    return failures, window_start, locked_until


async def check_password(
    conn: AsyncConnection,
    ctx: CallContext,
    row: Any,
    password: str | None,
    *,
    page_address: str | None,
) -> None:
    """Refuse (2010 locked, 2009 wrong) unless ``password`` is the card's on-site
    password. A wrong one is counted; the caller commits the refusal so that the
    count stays. ``page_address`` is the stamp page's client, None for the API."""
    now = ctx.now_naive
    period = timedelta(minutes=ctx.lockout_minutes)
    tried = counters(ctx, int(row.card_idx), page_address)
    states = [
        await lockout_repo.claim_lockout(conn, scope=counter.scope, subject=counter.subject)
        for counter in tried
    ]
    if any(state.locked_until is not None and state.locked_until > now for state in states):
        raise StampbookError(Code.ONSITE_LOCKED)
    if _matches(row, password):
        for counter, state in zip(tried, states, strict=True):
            if counter.cleared_by_success and (state.failures or state.window_start):
                await lockout_repo.set_lockout(
                    conn,
                    scope=counter.scope,
                    subject=counter.subject,
                    failures=0,
                    window_start=None,
                    locked_until=None,
                )
        return
    for counter, state in zip(tried, states, strict=True):
        failures, window_start, locked_until = _after_failure(state, counter, now, period)
        await lockout_repo.set_lockout(
            conn,
            scope=counter.scope,
            subject=counter.subject,
            failures=failures,
            window_start=window_start,
            locked_until=locked_until,
        )
    raise StampbookError(Code.ONSITE_PASSWORD_WRONG)


async def page_locked_until(
    conn: AsyncConnection, *, card_idx: int, page_address: str, now: datetime
) -> datetime | None:
    """When the page's on-site actions unlock for this client on this card
    (None: not locked)."""
    return await lockout_repo.lockouts_until(
        conn, keys=page_lock_keys(card_idx, page_address), now=now
    )


async def purge(conn: AsyncConnection, *, now: datetime, lock_minutes: int) -> int:
    """Forget counters that count nothing any more; returns how many went."""
    return await lockout_repo.purge_lockouts(
        conn, window_started_before=now - timedelta(minutes=lock_minutes), now=now
    )
