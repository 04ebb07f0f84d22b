"""SQL for dashboard users and their sessions. Builds and runs statements;
never commits. The rules are ``accounts/users.py`` and ``accounts/sessions.py``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.db.schema import account, dashboard_session, dashboard_user

_USER_COLUMNS: list[Any] = [
    dashboard_user.c.user_idx,
    dashboard_user.c.account_idx,
    dashboard_user.c.email,
    dashboard_user.c.password_hash,
    dashboard_user.c.role,
    dashboard_user.c.created_at,
    dashboard_user.c.disabled_at,
]


async def insert_user(conn: AsyncConnection, values: dict[str, Any]) -> int:
    """Insert a user; its ``user_idx``."""
    result = await conn.execute(
        insert(dashboard_user).values(**values).returning(dashboard_user.c.user_idx)
    )
    return int(result.scalar_one())


async def user_by_email(conn: AsyncConnection, *, email: str) -> Row[Any] | None:
    """The user with this (normalised) email, disabled or not."""
    query = select(*_USER_COLUMNS).where(dashboard_user.c.email == email)
    return (await conn.execute(query)).first()


async def user_in_account(
    conn: AsyncConnection, *, account_idx: int, user_idx: int, for_update: bool = False
) -> Row[Any] | None:
    """The user ``user_idx`` when it belongs to ``account_idx``."""
    query = select(*_USER_COLUMNS).where(
        dashboard_user.c.user_idx == user_idx, dashboard_user.c.account_idx == account_idx
    )
    if for_update:
        query = query.with_for_update()
    return (await conn.execute(query)).first()


async def users_of(conn: AsyncConnection, *, account_idx: int) -> list[Row[Any]]:
    """The account's users, oldest first."""
    query = (
        select(*_USER_COLUMNS)
        .where(dashboard_user.c.account_idx == account_idx)
        .order_by(dashboard_user.c.user_idx)
    )
    return list((await conn.execute(query)).all())


async def live_owners(conn: AsyncConnection, *, account_idx: int) -> int:
    """How many enabled owners the account has."""
    query = select(func.count()).where(
        dashboard_user.c.account_idx == account_idx,
        dashboard_user.c.role == "owner",
        dashboard_user.c.disabled_at.is_(None),
    )
    return int((await conn.execute(query)).scalar_one())


async def update_user(conn: AsyncConnection, *, user_idx: int, values: dict[str, Any]) -> None:
    """Set columns of one user."""
    await conn.execute(
        update(dashboard_user).where(dashboard_user.c.user_idx == user_idx).values(**values)
    )


async def insert_session(
    conn: AsyncConnection, *, session_hash: str, user_idx: int, now: datetime
) -> None:
    """Store a new session."""
    await conn.execute(
        insert(dashboard_session).values(
            session_hash=session_hash, user_idx=user_idx, created_at=now, last_seen_at=now
        )
    )


async def live_session(
    conn: AsyncConnection, *, session_hash: str, idle_since: datetime, created_since: datetime
) -> Row[Any] | None:
    """The session ``session_hash`` with its user and account, when it is not
    revoked, not idle since ``idle_since``, not older than ``created_since`` and
    its user is enabled."""
    columns: list[Any] = [
        dashboard_session.c.session_hash,
        dashboard_session.c.last_seen_at,
        dashboard_user.c.user_idx,
        dashboard_user.c.account_idx,
        dashboard_user.c.email,
        dashboard_user.c.role,
        account.c.name.label("account_name"),
        account.c.timezone,
        account.c.display_name,
        account.c.logo_url,
    ]
    query = (
        select(*columns)
        .join(dashboard_user, dashboard_user.c.user_idx == dashboard_session.c.user_idx)
        .join(account, account.c.account_idx == dashboard_user.c.account_idx)
        .where(
            dashboard_session.c.session_hash == session_hash,
            dashboard_session.c.revoked_at.is_(None),
            dashboard_session.c.last_seen_at > idle_since,
            dashboard_session.c.created_at > created_since,
            dashboard_user.c.disabled_at.is_(None),
        )
    )
    return (await conn.execute(query)).first()


async def touch_session(conn: AsyncConnection, *, session_hash: str, now: datetime) -> None:
    """Record that the session was used now (its idle timeout restarts)."""
    await conn.execute(
        update(dashboard_session)
        .where(dashboard_session.c.session_hash == session_hash)
        .values(last_seen_at=now)
    )


async def revoke_sessions(
    conn: AsyncConnection,
    *,
    now: datetime,
    user_idx: int | None = None,
    session_hash: str | None = None,
) -> int:
    """Revoke one session, or every live session of one user; how many ended."""
    query = update(dashboard_session).where(dashboard_session.c.revoked_at.is_(None))
    if user_idx is not None:
        query = query.where(dashboard_session.c.user_idx == user_idx)
    if session_hash is not None:
        query = query.where(dashboard_session.c.session_hash == session_hash)
    result = await conn.execute(query.values(revoked_at=now))
    return int(result.rowcount or 0)
