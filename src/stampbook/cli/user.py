"""``stampbook user create|list|disable|set-password``: dashboard users.

The forms are part of the contract (issue #14):
``stampbook user create --account NAME --email EMAIL --role owner|staff
[--password-stdin]``, ``user list --account NAME``, ``user disable EMAIL``,
``user set-password EMAIL [--password-stdin]``. Without ``--password-stdin``
the password is asked for twice on the terminal, never echoed.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.accounts import service as accounts
from stampbook.accounts import users
from stampbook.cli.shared import refuse, run_db, table
from stampbook.config import Settings
from stampbook.kit.clock import Clock, utc_naive
from stampbook.kit.errors import Code, StampbookError

app = typer.Typer(help="Dashboard users (people who sign in at /dashboard/).", no_args_is_help=True)

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def read_password(from_stdin: bool) -> str:
    """The new password, from stdin (one line) or asked twice; at least 10 characters."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        return users.check_password(password)
    except StampbookError as exc:
        refuse(exc)


def hashed(password: str) -> str:
    """The argon2id hash, computed before any transaction opens."""
    return asyncio.run(users.hash_password(password))


async def _user_by_email(conn: AsyncConnection, email: str) -> users.User:
    found = await users.find_by_email(conn, email=email)
    if found is None:
        raise StampbookError(Code.USER_NOT_FOUND)
    return found


@app.command("create")
def user_create(
    account: Annotated[str, typer.Option(help="The account's name (created when missing).")],
    email: Annotated[str, typer.Option(help="The user's email: their sign-in name.")],
    role: Annotated[str, typer.Option(help="owner or staff.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a dashboard user to an account."""
    try:
        users.normal_email(email)
        users.check_role(role)
    except StampbookError as exc:
        refuse(exc)
    password_hash = hashed(read_password(password_stdin))

    async def work(conn: AsyncConnection, _settings: Settings) -> users.User:
        now = utc_naive(Clock().now())
        account_idx = await accounts.ensure_account(conn, name=account, now=now)
        return await users.create_user(
            conn,
            account_idx=account_idx,
            email=email,
            role=role,
            password_hash=password_hash,
            now=now,
        )

    created = run_db(work)
    typer.echo(f"created {created.role} {created.email} in account {account!r}")


@app.command("list")
def user_list(account: Annotated[str, typer.Option(help="The account's name.")]) -> None:
    """List an account's dashboard users."""

    async def work(conn: AsyncConnection, _settings: Settings) -> list[users.User]:
        found = await accounts.find_account(conn, name=account)
        if found is None:
            typer.echo(f"error: no account named {account!r}", err=True)
            raise typer.Exit(1)
        return await users.list_users(conn, account_idx=int(found["account_idx"]))

    rows = [
        {
            "user_idx": user.user_idx,
            "email": user.email,
            "role": user.role,
            "disabled": "yes" if user.disabled else "no",
            "created_at": user.created_at,
        }
        for user in run_db(work)
    ]
    table(rows, ["user_idx", "email", "role", "disabled", "created_at"])


@app.command("disable")
def user_disable(email: str) -> None:
    """Disable a user: they cannot sign in, and every session of theirs ends."""

    async def work(conn: AsyncConnection, _settings: Settings) -> None:
        user = await _user_by_email(conn, email)
        await users.disable_user(
            conn,
            account_idx=user.account_idx,
            user_idx=user.user_idx,
            now=utc_naive(Clock().now()),
        )

    run_db(work)
    typer.echo(f"disabled {email.strip().lower()}; their sessions are ended")


@app.command("set-password")
def user_set_password(email: str, password_stdin: PasswordStdin = False) -> None:
    """Set a user's password; every session of theirs ends."""
    password_hash = hashed(read_password(password_stdin))

    async def work(conn: AsyncConnection, _settings: Settings) -> None:
        user = await _user_by_email(conn, email)
        await users.set_password(
            conn,
            account_idx=user.account_idx,
            user_idx=user.user_idx,
            password_hash=password_hash,
            now=utc_naive(Clock().now()),
        )

    run_db(work)
    typer.echo(f"password set for {email.strip().lower()}; their sessions are ended")
