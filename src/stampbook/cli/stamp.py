"""``stampbook stamp create|add``: the same rules and ledger as the API, source CLI."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.cli.shared import run_in_account
from stampbook.kit.context import CallContext
from stampbook.stamps import repository as stamp_repo
from stampbook.stamps import service as stamps
from stampbook.stamps.schemas import CreateStamp

app = typer.Typer(help="Stamps.", no_args_is_help=True)


@app.command("create")
def stamp_create(
    account: Annotated[str, typer.Option()],
    card: Annotated[int, typer.Option(help="cardIdx")],
    user_id: Annotated[str | None, typer.Option()] = None,
    days: Annotated[int, typer.Option(help="Valid from today for this many days.")] = 365,
) -> None:
    """Issue a stamp; prints its stampIdx, then its page URL."""

    async def work(conn: AsyncConnection, ctx: CallContext) -> dict[str, Any]:
        body = CreateStamp(
            cardIdx=card,
            strtYmd=ctx.today,
            endYmd=ctx.today + timedelta(days=days),
            userId=user_id,
        )
        stamp_idx = await stamps.create(conn, ctx, body)
        return await stamps.validate(conn, ctx, stamp_idx=stamp_idx)

    view = run_in_account(account, work)
    typer.echo(view["stampUrl"])
    typer.echo(view["stampIdx"])


@app.command("add")
def stamp_add(
    account: Annotated[str, typer.Option()],
    stamp: Annotated[int, typer.Option(help="stampIdx")],
) -> None:
    """Add one stamp (same rules and ledger as the API, source CLI)."""

    async def work(conn: AsyncConnection, ctx: CallContext) -> dict[str, Any]:
        await stamps.add(conn, ctx, stamp_idx=stamp)
        row = await stamp_repo.view(conn, account_idx=ctx.account_idx, stamp_idx=stamp)
        return {"stamps": row.stamps if row else None, "max": row.max_stamps if row else None}

    result = run_in_account(account, work)
    typer.echo(f"{result['stamps']} / {result['max']}")
