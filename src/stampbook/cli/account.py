"""``stampbook account list|set``."""

from __future__ import annotations

from typing import Annotated

import typer

from stampbook.accounts import service as accounts
from stampbook.cli.shared import run_db, table
from stampbook.kit.context import zone_for
from stampbook.kit.ratelimit import validate_limit

app = typer.Typer(help="Accounts.", no_args_is_help=True)


@app.command("list")
def account_list() -> None:
    """List accounts with their live key counts."""
    rows = run_db(lambda conn, _s: accounts.list_accounts(conn))
    table(rows, ["account_idx", "name", "timezone", "rate_limit", "live_keys", "created_at"])


@app.command("set")
def account_set(
    name: str,
    timezone: Annotated[str | None, typer.Option(help="IANA zone for 'today'.")] = None,
    rate_limit: Annotated[
        str | None, typer.Option(help="Per-key limit, e.g. 600/minute, or 'off'.")
    ] = None,
) -> None:
    """Set an account's time zone or rate limit."""
    if timezone is not None:
        zone_for(timezone)
    if rate_limit is not None:
        try:
            validate_limit(rate_limit)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    found = run_db(
        lambda conn, _s: accounts.set_account_options(
            conn, name=name, timezone=timezone, rate_limit=rate_limit
        )
    )
    if not found:
        typer.echo(f"error: no account named {name!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"account {name!r} updated")
