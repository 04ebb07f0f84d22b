"""Dashboard users: people of an account who sign in to the dashboard, apart
from API keys. Passwords are argon2id hashes (``argon2-cffi``), at least
``MIN_PASSWORD_LENGTH`` characters. Disabling a user or changing a password
ends every session of that user (``sessions.revoke_all``)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.accounts import user_repository as repo
from stampbook.kit.errors import Code, StampbookError

MIN_PASSWORD_LENGTH = 10
ROLE_OWNER = "owner"
ROLE_STAFF = "staff"
ROLES = (ROLE_OWNER, ROLE_STAFF)
# A practical check, not RFC 5322: one @, no spaces, a dot in the domain.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_HASHER = PasswordHasher()  # argon2id with the library's recommended parameters
# Verified when the email is unknown, so that an unknown email costs the same
# time as a wrong password and the two answers cannot be told apart.
_DUMMY_HASH = _HASHER.hash("stampbook-no-such-user")


def normal_email(email: str) -> str:
    """The stored form of an email: trimmed, lower case; 2304 when it is not one."""
    value = email.strip().lower()
    if len(value) > 254 or not value.isprintable() or not _EMAIL.fullmatch(value):
        raise StampbookError(Code.USER_EMAIL_INVALID)
    return value


def check_role(role: str) -> str:
    """``role`` when it is owner or staff; 2305 otherwise."""
    if role not in ROLES:
        raise StampbookError(Code.USER_ROLE_INVALID)
    return role


def check_password(password: str) -> str:
    """``password`` when it is long enough; 2301 otherwise."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StampbookError(Code.PASSWORD_TOO_SHORT)
    return password


async def hash_password(password: str) -> str:
    """The argon2id hash of ``password``, computed off the event loop."""
    return await asyncio.to_thread(_HASHER.hash, password)


async def password_matches(password_hash: str | None, password: str) -> bool:
    """True when ``password`` is the one hashed (off the event loop); with no hash,
    a dummy verification of the same cost, always False."""

    def verify() -> bool:
        try:
            return _HASHER.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


@dataclass(frozen=True, slots=True)
class User:
    """A dashboard user as shown (never its hash)."""

    user_idx: int
    account_idx: int
    email: str
    role: str
    created_at: datetime
    disabled: bool


def _user(row: Any) -> User:
    return User(
        user_idx=int(row.user_idx),
        account_idx=int(row.account_idx),
        email=row.email,
        role=row.role,
        created_at=row.created_at,
        disabled=row.disabled_at is not None,
    )


async def create_user(
    conn: AsyncConnection,
    *,
    account_idx: int,
    email: str,
    role: str,
    password_hash: str,
    now: datetime,
) -> User:
    """Add a user to an account (the password already checked and hashed:
    ``check_password`` then ``hash_password``, outside the transaction)."""
    address = normal_email(email)
    check_role(role)
    if await repo.user_by_email(conn, email=address) is not None:
        raise StampbookError(Code.USER_EMAIL_TAKEN)
    user_idx = await repo.insert_user(
        conn,
        {
            "account_idx": account_idx,
            "email": address,
            "password_hash": password_hash,
            "role": role,
            "created_at": now,
        },
    )
    found = await repo.user_in_account(conn, account_idx=account_idx, user_idx=user_idx)
    assert found is not None
    return _user(found)


async def list_users(conn: AsyncConnection, *, account_idx: int) -> list[User]:
    """The account's users, oldest first."""
    return [_user(row) for row in await repo.users_of(conn, account_idx=account_idx)]


async def find_by_email(conn: AsyncConnection, *, email: str) -> User | None:
    """The user with this email, or None."""
    row = await repo.user_by_email(conn, email=normal_email(email))
    return _user(row) if row else None


async def _keep_an_owner(conn: AsyncConnection, row: Any) -> None:
    """Refuse (2308) to take away the account's last enabled owner."""
    if (
        row.role == ROLE_OWNER
        and row.disabled_at is None
        and await repo.live_owners(conn, account_idx=row.account_idx) <= 1
    ):
        raise StampbookError(Code.LAST_OWNER)


async def _locked(conn: AsyncConnection, account_idx: int, user_idx: int) -> Any:
    row = await repo.user_in_account(
        conn, account_idx=account_idx, user_idx=user_idx, for_update=True
    )
    if row is None:
        raise StampbookError(Code.USER_NOT_FOUND)
    return row


async def disable_user(
    conn: AsyncConnection, *, account_idx: int, user_idx: int, now: datetime
) -> None:
    """Disable a user and end all of their sessions (never the last owner)."""
    row = await _locked(conn, account_idx, user_idx)
    if row.disabled_at is not None:
        return
    await _keep_an_owner(conn, row)
    await repo.update_user(conn, user_idx=user_idx, values={"disabled_at": now})
    await repo.revoke_sessions(conn, now=now, user_idx=user_idx)


async def enable_user(conn: AsyncConnection, *, account_idx: int, user_idx: int) -> None:
    """Let a disabled user sign in again (old sessions stay ended)."""
    await _locked(conn, account_idx, user_idx)
    await repo.update_user(conn, user_idx=user_idx, values={"disabled_at": None})


async def set_role(conn: AsyncConnection, *, account_idx: int, user_idx: int, role: str) -> None:
    """Make a user owner or staff (never demote the last owner)."""
    check_role(role)
    row = await _locked(conn, account_idx, user_idx)
    if row.role == role:
        return
    await _keep_an_owner(conn, row)
    await repo.update_user(conn, user_idx=user_idx, values={"role": role})


async def set_password(
    conn: AsyncConnection, *, account_idx: int, user_idx: int, password_hash: str, now: datetime
) -> None:
    """Store a new password hash and end every session of the user."""
    await _locked(conn, account_idx, user_idx)
    await repo.update_user(conn, user_idx=user_idx, values={"password_hash": password_hash})
    await repo.revoke_sessions(conn, now=now, user_idx=user_idx)
