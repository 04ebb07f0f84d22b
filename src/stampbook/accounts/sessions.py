"""Dashboard sessions: opened by a sign-in, kept in the database (so that every
worker sees a revocation at once), ended by logout, a password change,
disabling the user, ``session_idle_minutes`` unused or
``session_absolute_hours`` after sign-in.

The cookie holds a random secret; only its SHA-256 is stored, so a copy of
the database cannot be used to sign in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.accounts import user_repository as repo

# last_seen_at is written at most this often: a page view must not be a write.
TOUCH_EVERY = timedelta(seconds=60)


def session_hash(secret: str) -> str:
    """The stored form of a session cookie's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """A fresh session secret (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The person behind a live session, with their account's settings."""

    session_hash: str
    user_idx: int
    account_idx: int
    email: str
    role: str
    account_name: str
    timezone: str | None
    display_name: str | None
    logo_url: str | None
    last_seen_at: datetime

    @property
    def is_owner(self) -> bool:
        """Owners may do everything; staff only the counter's work."""
        return self.role == "owner"


async def open_session(conn: AsyncConnection, *, user_idx: int, now: datetime) -> str:
    """Start a session for ``user_idx``; the secret for its cookie."""
    secret = new_secret()
    await repo.insert_session(conn, session_hash=session_hash(secret), user_idx=user_idx, now=now)
    return secret


async def resolve(
    conn: AsyncConnection,
    *,
    secret: str,
    now: datetime,
    idle: timedelta,
    absolute: timedelta,
) -> SignedIn | None:
    """The signed-in user of a cookie's ``secret``, or None when the session is
    unknown, revoked, idle too long, too old, or its user disabled. Reads only:
    ``touch`` restarts the idle clock."""
    hashed = session_hash(secret)
    row = await repo.live_session(
        conn, session_hash=hashed, idle_since=now - idle, created_since=now - absolute
    )
    if row is None:
        return None
    return SignedIn(
        session_hash=hashed,
        user_idx=int(row.user_idx),
        account_idx=int(row.account_idx),
        email=row.email,
        role=row.role,
        account_name=row.account_name,
        timezone=row.timezone,
        display_name=row.display_name,
        logo_url=row.logo_url,
        last_seen_at=row.last_seen_at,
    )


def needs_touch(user: SignedIn, now: datetime) -> bool:
    """True when the session's last use is older than ``TOUCH_EVERY``: a page
    view writes at most once a minute (on SQLite a write takes the lock)."""
    return now - user.last_seen_at >= TOUCH_EVERY


async def touch(conn: AsyncConnection, *, user: SignedIn, now: datetime) -> None:
    """Record that the session was used now (its idle timeout restarts)."""
    await repo.touch_session(conn, session_hash=user.session_hash, now=now)


async def end_session(conn: AsyncConnection, *, secret: str, now: datetime) -> None:
    """Log out: revoke the session of ``secret``."""
    await repo.revoke_sessions(conn, now=now, session_hash=session_hash(secret))


async def end_all(conn: AsyncConnection, *, user_idx: int, now: datetime) -> int:
    """Revoke every live session of a user; how many ended."""
    return await repo.revoke_sessions(conn, now=now, user_idx=user_idx)
