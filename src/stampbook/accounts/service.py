"""Accounts and API keys: creation, listing, revocation and key lookup.

Keys are long random secrets. Only a SHA-256 of a key is stored (fast, exact
lookup) with a short visible prefix; the full key is shown once, at creation.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.db.schema import account, api_key, api_key_use, stamp_event
from stampbook.kit.call import Principal
from stampbook.kit.db import Database
from stampbook.kit.driver import DriverStatement

KEY_PREFIX = "sk_"
VISIBLE_PREFIX_LENGTH = 11


def hash_key(key: str) -> str:
    """The stored form of an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh key: ``sk_`` and 43 URL-safe characters (256 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key, with the only copy of its secret."""

    key_idx: int
    account_idx: int
    account_name: str
    key: str
    prefix: str


async def find_account(conn: AsyncConnection, *, name: str) -> dict[str, Any] | None:
    """The account called ``name``, or None."""
    row = (await conn.execute(select(account).where(account.c.name == name))).mappings().first()
    return dict(row) if row else None


async def ensure_account(
    conn: AsyncConnection, *, name: str, now: datetime, timezone: str | None = None
) -> int:
    """The idx of the account called ``name``, creating it when missing."""
    existing = await find_account(conn, name=name)
    if existing:
        return int(existing["account_idx"])
    result = await conn.execute(
        insert(account)
        .values(name=name, timezone=timezone, created_at=now)
        .returning(account.c.account_idx)
    )
    return int(result.scalar_one())


async def create_key(
    conn: AsyncConnection, *, account_name: str, now: datetime, name: str | None = None
) -> CreatedKey:
    """Create a key for ``account_name`` (creating the account too when needed)."""
    account_idx = await ensure_account(conn, name=account_name, now=now)
    key = new_key()
    prefix = key[:VISIBLE_PREFIX_LENGTH]
    result = await conn.execute(
        insert(api_key)
        .values(
            account_idx=account_idx,
            prefix=prefix,
            key_hash=hash_key(key),
            name=name,
            created_at=now,
        )
        .returning(api_key.c.key_idx)
    )
    return CreatedKey(
        key_idx=int(result.scalar_one()),
        account_idx=account_idx,
        account_name=account_name,
        key=key,
        prefix=prefix,
    )


async def list_keys(
    conn: AsyncConnection, *, account_name: str | None = None
) -> list[dict[str, Any]]:
    """Every key (never its secret), optionally of one account."""
    query = (
        select(
            api_key.c.key_idx,
            account.c.name.label("account"),
            api_key.c.prefix,
            api_key.c.name,
            api_key.c.created_at,
            api_key.c.revoked_at,
        )
        .join(account, account.c.account_idx == api_key.c.account_idx)
        .order_by(api_key.c.key_idx)
    )
    if account_name is not None:
        query = query.where(account.c.name == account_name)
    return [dict(row) for row in (await conn.execute(query)).mappings()]


async def revoke_key(
    conn: AsyncConnection, *, key_idx: int, now: datetime, account_idx: int | None = None
) -> bool:
    """Revoke a key (of ``account_idx`` only, when given); False when there is
    no such live key."""
    query = update(api_key).where(api_key.c.key_idx == key_idx, api_key.c.revoked_at.is_(None))
    if account_idx is not None:
        query = query.where(api_key.c.account_idx == account_idx)
    result = await conn.execute(query.values(revoked_at=now))
    return bool(result.rowcount)


async def record_key_uses(conn: AsyncConnection, uses: dict[int, datetime]) -> None:
    """Write down when keys were last used (naive UTC), keeping the later of
    what is stored and what is given; keys deleted meanwhile are skipped."""
    if not uses:
        return
    existing = set(
        (await conn.execute(select(api_key.c.key_idx).where(api_key.c.key_idx.in_(uses))))
        .scalars()
        .all()
    )
    rows = [{"key_idx": k, "last_used_at": at} for k, at in uses.items() if k in existing]
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(api_key_use)
    later = func.greatest if conn.dialect.name == "postgresql" else func.max
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[api_key_use.c.key_idx],
            set_={
                "last_used_at": later(api_key_use.c.last_used_at, statement.excluded.last_used_at)
            },
        ),
        rows,
    )


async def list_keys_of(conn: AsyncConnection, *, account_idx: int) -> list[dict[str, Any]]:
    """An account's keys, newest first, with when each was last used.

    "Last used" is the later of the last request any worker saw it answer
    (``api_key_use``, written every minute by ``jobs.record_key_uses_forever``)
    and the newest ledger row it wrote (the only trace of a key used before
    that table existed).
    """
    # Newest first through the ledger's (account_idx, event_idx) index: a key in
    # use finds its last row among the newest, without reading the whole ledger.
    last_changed = (
        select(stamp_event.c.reg_ymdt)
        .where(
            stamp_event.c.account_idx == account_idx,
            stamp_event.c.key_idx == api_key.c.key_idx,
        )
        .order_by(stamp_event.c.event_idx.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = (
        select(
            api_key.c.key_idx,
            api_key.c.prefix,
            api_key.c.name,
            api_key.c.created_at,
            api_key.c.revoked_at,
            last_changed.label("last_changed_at"),
            api_key_use.c.last_used_at.label("last_seen_at"),
        )
        .select_from(api_key.outerjoin(api_key_use, api_key_use.c.key_idx == api_key.c.key_idx))
        .where(api_key.c.account_idx == account_idx)
        .order_by(api_key.c.key_idx.desc())
    )
    keys = []
    for row in (await conn.execute(query)).mappings():
        key = dict(row)
        traces = [t for t in (key.pop("last_changed_at"), key.pop("last_seen_at")) if t is not None]
        key["last_used_at"] = max(traces, default=None)
        keys.append(key)
    return keys


async def list_accounts(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every account with its count of live keys."""
    live_keys = (
        select(func.count())
        .where(api_key.c.account_idx == account.c.account_idx, api_key.c.revoked_at.is_(None))
        .scalar_subquery()
    )
    query = select(
        account.c.account_idx,
        account.c.name,
        account.c.timezone,
        account.c.rate_limit,
        account.c.created_at,
        live_keys.label("live_keys"),
    ).order_by(account.c.account_idx)
    return [dict(row) for row in (await conn.execute(query)).mappings()]


async def set_account_options(
    conn: AsyncConnection,
    *,
    name: str,
    timezone: str | None = None,
    rate_limit: str | None = None,
) -> bool:
    """Set an account's time zone and/or rate limit; False when no such account."""
    values: dict[str, Any] = {}
    if timezone is not None:
        values["timezone"] = timezone
    if rate_limit is not None:
        values["rate_limit"] = rate_limit
    if not values:
        return await find_account(conn, name=name) is not None
    result = await conn.execute(update(account).where(account.c.name == name).values(**values))
    return bool(result.rowcount)


# Runs on every request: built once, so SQLAlchemy reuses its cache key.
_PRINCIPAL_BY_HASH = (
    select(api_key.c.key_idx, api_key.c.account_idx, account.c.timezone, account.c.rate_limit)
    .join(account, account.c.account_idx == api_key.c.account_idx)
    .where(api_key.c.key_hash == bindparam("p_key_hash"), api_key.c.revoked_at.is_(None))
)


_PRINCIPAL_BY_HASH_DRIVER = DriverStatement(_PRINCIPAL_BY_HASH, name="Principal")


async def principal_for_key(db: Database, *, key: str) -> Principal | None:
    """Resolve a presented key to its principal; None when unknown or revoked.

    Runs on every request (unless cached), so on the driver connection where
    the database has that path (kit/driver.py).
    """
    values = {"p_key_hash": hash_key(key)}
    if db.has_driver_path:
        async with db.driver() as conn:
            row = await _PRINCIPAL_BY_HASH_DRIVER.first(conn, values)
    else:
        async with db.read() as conn:
            row = (await conn.execute(_PRINCIPAL_BY_HASH, values)).first()
    if row is None:
        return None
    return Principal(
        account_idx=int(row.account_idx),
        key_idx=int(row.key_idx),
        timezone=row.timezone,
        rate_limit=row.rate_limit,
    )
