"""What every ``stampbook`` command shares: the settings, one transaction on the
configured database, the account context, refusals and table printing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.accounts import service as accounts
from stampbook.config import Settings
from stampbook.kit.clock import Clock
from stampbook.kit.context import SOURCE_CLI, CallContext, zone_for
from stampbook.kit.db import Database
from stampbook.kit.errors import StampbookError

T = TypeVar("T")


def load_settings() -> Settings:
    """The settings from the environment (``STAMPBOOK_…``), read afresh per command."""
    return Settings()


def refuse(exc: StampbookError) -> NoReturn:
    """Print a refusal as ``error <code> <NAME>: <message>`` on stderr and exit 1."""
    typer.echo(f"error {int(exc.code)} {exc.code.name}: {exc.message('en')}", err=True)
    raise typer.Exit(1) from exc


def run_with_database(work: Callable[[Database, Settings], Awaitable[T]]) -> T:
    """Run ``work`` with a handle on the configured database, for a service that
    owns its transactions (an import, an export)."""
    current = load_settings()

    async def runner() -> T:
        database = Database(current.database_url, pool_size=2)
        try:
            return await work(database, current)
        finally:
            await database.dispose()

    try:
        return asyncio.run(runner())
    except StampbookError as exc:
        refuse(exc)


def run_db(work: Callable[[AsyncConnection, Settings], Awaitable[T]]) -> T:
    """Run ``work`` in one write transaction on the configured database."""
    current = load_settings()

    async def runner() -> T:
        database = Database(current.database_url, pool_size=1)
        try:
            async with database.write() as conn:
                return await work(conn, current)
        finally:
            await database.dispose()

    try:
        return asyncio.run(runner())
    except StampbookError as exc:
        refuse(exc)


async def account_context(conn: AsyncConnection, settings: Settings, name: str) -> CallContext:
    """The call context of account ``name`` (its zone, now, source CLI); exits 1 when
    there is no such account."""
    found = await accounts.find_account(conn, name=name)
    if found is None:
        typer.echo(f"error: no account named {name!r} (see `stampbook account list`)", err=True)
        raise typer.Exit(1)
    return CallContext(
        account_idx=int(found["account_idx"]),
        zone=zone_for(found["timezone"] or settings.timezone),
        now=Clock().now(),
        public_url=settings.public_url,
        source=SOURCE_CLI,
        wallet=settings.wallet,
    )


def run_in_account(account: str, work: Callable[[AsyncConnection, CallContext], Awaitable[T]]) -> T:
    """Run ``work(conn, ctx)`` for ``account`` in one write transaction."""

    async def run(conn: AsyncConnection, current: Settings) -> T:
        return await work(conn, await account_context(conn, current, account))

    return run_db(run)


def parsed(model: Callable[..., T], **fields: Any) -> T:
    """Build a request model from options; its complaint becomes a usage error."""
    try:
        return model(**fields)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Print ``rows`` as aligned columns (``-`` for a missing value, ``(none)`` when empty)."""
    if not rows:
        typer.echo("(none)")
        return
    text = [
        [str(row.get(col) if row.get(col) is not None else "-") for col in columns] for row in rows
    ]
    widths = [max(len(col), *(len(r[i]) for r in text)) for i, col in enumerate(columns)]
    typer.echo("  ".join(col.ljust(widths[i]) for i, col in enumerate(columns)))
    for r in text:
        typer.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)))


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***``, fit to print."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
    return url


def ensure_sqlite_dir(settings: Settings) -> None:
    """Create the directory of an SQLite database file, so the first migration can make it."""
    if settings.is_sqlite:
        path = settings.database_url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
