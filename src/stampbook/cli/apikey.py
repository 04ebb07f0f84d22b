"""``stampbook apikey create|list|revoke``.

``apikey create --account NAME`` prints the key alone on the last line of
stdout: part of the contract.
"""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.accounts import service as accounts
from stampbook.cli.shared import run_db, table
from stampbook.config import Settings
from stampbook.kit.clock import Clock, utc_naive

app = typer.Typer(help="API keys.", no_args_is_help=True)


@app.command("create")
def apikey_create(
    account: Annotated[str, typer.Option(help="Account name; created when missing.")],
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
) -> None:
    """Create an API key; the key is printed alone on the last line (shown only once)."""

    async def work(conn: AsyncConnection, settings: Settings) -> accounts.CreatedKey:
        return await accounts.create_key(
            conn, account_name=account, now=utc_naive(Clock().now()), name=name
        )

    created = run_db(work)
    typer.echo(f"key {created.key_idx} ({created.prefix}…) for account {created.account_name!r};")
    typer.echo("store it now: it is shown only once.")
    typer.echo(created.key)


@app.command("list")
def apikey_list(account: Annotated[str | None, typer.Option()] = None) -> None:
    """List keys (prefix only, never the secret)."""
    rows = run_db(lambda conn, _s: accounts.list_keys(conn, account_name=account))
    table(rows, ["key_idx", "account", "prefix", "name", "created_at", "revoked_at"])


@app.command("revoke")
def apikey_revoke(
    key_idx: Annotated[int, typer.Argument(help="The key's number (apikey list).")],
) -> None:
    """Revoke a key: every later request with it is refused with 1101."""
    revoked = run_db(
        lambda conn, _s: accounts.revoke_key(conn, key_idx=key_idx, now=utc_naive(Clock().now()))
    )
    if not revoked:
        typer.echo(f"error: no live key {key_idx}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked key {key_idx}")
