"""Signing in to the dashboard, throttled.

Failures are counted per email and per client address in the same counters
table as on-site password guesses (``onsite_lockout``, scopes ``login_email``
and ``login_address``; the email by its SHA-256, so the table holds no
addresses of people). After two failures every answer is slowed by
``login_slow_seconds``; at ``login_email_failures`` for one email, or
``login_address_failures`` from one address, sign-in is refused for
``login_lock_minutes``, even with the right password.

An unknown email is treated exactly like a wrong password: counted, slowed,
locked, verified against a dummy hash of the same cost, and answered with the
same code (2306), so the answer never says whether an email exists.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from stampbook.accounts import sessions, users
from stampbook.accounts import user_repository as repo
from stampbook.config import Settings
from stampbook.kit.db import Database
from stampbook.kit.errors import Code, StampbookError
from stampbook.stamps import lockout_repository as counters

SCOPE_EMAIL = "login_email"
SCOPE_ADDRESS = "login_address"
SLOW_AFTER = 2


def _keys(email: str, address: str) -> list[tuple[str, str]]:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return [(SCOPE_EMAIL, digest), (SCOPE_ADDRESS, address[:100])]


@dataclass(frozen=True, slots=True)
class Limits:
    """The throttle's settings."""

    email_failures: int
    address_failures: int
    lock: timedelta
    slow_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        """The limits configured in ``settings``."""
        return cls(
            email_failures=settings.login_email_failures,
            address_failures=settings.login_address_failures,
            lock=timedelta(minutes=settings.login_lock_minutes),
            slow_seconds=settings.login_slow_seconds,
        )


async def _count_failure(
    db: Database, keys: list[tuple[str, str]], limits: Limits, now: datetime
) -> None:
    """Count one failure on both counters; lock those that reach their limit."""
    ceilings = {SCOPE_EMAIL: limits.email_failures, SCOPE_ADDRESS: limits.address_failures}
    async with db.write() as conn:
        for scope, subject in keys:
            state = await counters.claim_lockout(conn, scope=scope, subject=subject)
            fresh = state.window_start is None or state.window_start <= now - limits.lock
            failures = 1 if fresh else state.failures + 1
            window = now if fresh else state.window_start
            locked = now + limits.lock if failures >= ceilings[scope] else state.locked_until
            await counters.set_lockout(
                conn,
                scope=scope,
                subject=subject,
                failures=failures,
                window_start=window,
                locked_until=locked,
            )


async def sign_in(
    db: Database,
    *,
    email: str,
    password: str,
    address: str,
    now: datetime,
    limits: Limits,
    open_session: bool = True,
) -> str:
    """Check ``email`` and ``password`` from ``address``; the new session's
    secret (``""`` with ``open_session=False``: a password change checks the
    current one through the same throttle). Refuses with 2306 (wrong, unknown
    or disabled: one answer) or 2307 (locked)."""
    keys = _keys(email, address)
    async with db.read() as conn:
        if await counters.lockouts_until(conn, keys=keys, now=now) is not None:
            raise StampbookError(Code.SIGN_IN_LOCKED)
        failures = await counters.failures_of(conn, keys=keys, since=now - limits.lock)
        try:
            row = await repo.user_by_email(conn, email=users.normal_email(email))
        except StampbookError:
            row = None
    if failures >= SLOW_AFTER and limits.slow_seconds:
        # Slowed before the answer is known, so the delay says nothing either.
        await asyncio.sleep(limits.slow_seconds)
    usable = row is not None and row.disabled_at is None
    matches = await users.password_matches(row.password_hash if row else None, password)
    if not (usable and matches):
        await _count_failure(db, keys, limits, now)
        raise StampbookError(Code.SIGN_IN_FAILED)
    assert row is not None
    async with db.write() as conn:
        email_scope, email_subject = keys[0]
        await counters.clear_lockout(conn, scope=email_scope, subject=email_subject)
        if not open_session:
            return ""
        return await sessions.open_session(conn, user_idx=int(row.user_idx), now=now)
