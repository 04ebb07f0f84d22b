"""The customer's PIN: choosing it on the first visit, entering it later, and
the lock that stops guessing. Each step owns its transactions.

PIN checks are argon2 verifications (tens of milliseconds), so they run
outside any write transaction: each attempt is first *counted* in a short
transaction (which also decides the lock, and commits even when the PIN
turns out wrong), then verified, then cleared when right. Counting before
verifying means parallel guesses can never get more than the allowed number
of tries per lock period.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.kit.clock import utc_naive
from stampbook.kit.runtime import Runtime
from stampbook.page import repository as page_repo
from stampbook.page.service import Loaded, find, load, minutes_left

PIN_PATTERN = re.compile(r"[0-9]{4,6}")

_hasher = PasswordHasher()


def pin_format_ok(pin: str) -> bool:
    """True for 4 to 6 ASCII digits."""
    return PIN_PATTERN.fullmatch(pin) is not None


async def hash_pin(pin: str) -> str:
    """The argon2 hash of ``pin`` (computed off the event loop)."""
    return await asyncio.to_thread(_hasher.hash, pin)


async def pin_matches(pin_hash: str, pin: str) -> bool:
    """True when ``pin`` is the one ``pin_hash`` was made from (off the event loop)."""

    def verify() -> bool:
        try:
            return _hasher.verify(pin_hash, pin)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


@dataclass(frozen=True, slots=True)
class PinAttempt:
    """One counted try: the hash to check against, or the lock that forbids trying."""

    pin_hash: str | None
    failures: int
    locked_minutes: int

    @property
    def allowed(self) -> bool:
        """False when the page is locked (nothing may be verified)."""
        return self.pin_hash is not None


async def count_pin_attempt(
    conn: AsyncConnection, row: Row[Any], *, now: datetime, limit: int, lock_minutes: int
) -> PinAttempt:
    """Count one PIN try on a row locked by this transaction, before verifying it.

    Reaching ``limit`` tries locks the page for ``lock_minutes`` at once; a
    right PIN clears both afterwards (``clear_pin_failures``). A lock that has
    run out starts the count afresh.
    """
    if row.pin_locked_until is not None and row.pin_locked_until > now:
        return PinAttempt(None, row.pin_failures, minutes_left(row.pin_locked_until, now))
    lock_expired = row.pin_locked_until is not None
    failures = (0 if lock_expired else row.pin_failures) + 1
    locked_until = now + timedelta(minutes=lock_minutes) if failures >= limit else None
    await page_repo.set_pin_failures(
        conn, stamp_idx=row.stamp_idx, failures=failures, locked_until=locked_until
    )
    return PinAttempt(row.pin_hash, failures, minutes_left(locked_until, now))


# --- the PIN form ---------------------------------------------------------------------


class PinRefusal(StrEnum):
    """Why a PIN form was refused; each value is the page's phrase for it."""

    FORMAT = "pin_format"
    MISMATCH = "pin_mismatch"
    TAKEN = "pin_taken"
    WRONG = "pin_wrong_left"
    LOCKED = "pin_locked"


@dataclass(frozen=True, slots=True)
class PinOutcome:
    """What a PIN form did: accepted (the PIN a new session names) or refused,
    with the stamp as it now stands (None when it is gone)."""

    loaded: Loaded | None
    pin_hash: str | None = None
    chosen: bool = False
    refusal: PinRefusal | None = None
    tries_left: int = 0
    locked_minutes: int = 0


async def submit_pin(runtime: Runtime, loaded: Loaded, *, pin: str, again: str) -> PinOutcome:
    """Choose the stamp's first PIN (``pin`` typed twice), or enter the one it has."""
    if loaded.row.pin_hash is None:
        return await choose_pin(runtime, loaded, pin=pin, again=again)
    return await enter_pin(runtime, loaded, pin=pin)


async def choose_pin(runtime: Runtime, loaded: Loaded, *, pin: str, again: str) -> PinOutcome:
    """Store the first PIN, unless it is malformed, mistyped, or another first
    visit stored one meanwhile."""
    if not pin_format_ok(pin):
        return PinOutcome(loaded, refusal=PinRefusal.FORMAT)
    if pin != again:
        return PinOutcome(loaded, refusal=PinRefusal.MISMATCH)
    pin_hash = await hash_pin(pin)
    async with runtime.db.write() as conn:
        stored = await page_repo.set_pin_if_unset(
            conn, stamp_idx=loaded.row.stamp_idx, pin_hash=pin_hash
        )
    if not stored:
        return PinOutcome(await load(runtime, loaded.row.token), refusal=PinRefusal.TAKEN)
    return PinOutcome(loaded, pin_hash=pin_hash, chosen=True)


async def enter_pin(runtime: Runtime, loaded: Loaded, *, pin: str) -> PinOutcome:
    """Check an entered PIN: counted (and committed) before it is verified, so
    wrong guesses lock the page; a right one clears the count."""
    settings = runtime.settings
    if not pin_format_ok(pin):
        # Not counted: the format is no secret, and a typo should not cost a try.
        return PinOutcome(loaded, refusal=PinRefusal.FORMAT)
    token = loaded.row.token
    async with runtime.db.write() as conn:
        row = await find(conn, token, for_update=True)
        if row is None:
            return PinOutcome(None)
        attempt = await count_pin_attempt(
            conn,
            row,
            now=utc_naive(runtime.clock.now()),
            limit=settings.lockout_failures,
            lock_minutes=settings.lockout_minutes,
        )
    if attempt.allowed:
        assert attempt.pin_hash is not None
        if await pin_matches(attempt.pin_hash, pin):
            async with runtime.db.write() as conn:
                await page_repo.clear_pin_failures(
                    conn, stamp_idx=row.stamp_idx, pin_hash=attempt.pin_hash
                )
            return PinOutcome(loaded, pin_hash=attempt.pin_hash)
    fresh = await load(runtime, token)
    if attempt.locked_minutes:
        return PinOutcome(fresh, refusal=PinRefusal.LOCKED, locked_minutes=attempt.locked_minutes)
    left = max(settings.lockout_failures - attempt.failures, 0)
    return PinOutcome(fresh, refusal=PinRefusal.WRONG, tries_left=left)
