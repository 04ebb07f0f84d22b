"""``stampbook card create|list``: the same services as the API, source CLI."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.cards import service as cards
from stampbook.cards.schemas import CreateCard
from stampbook.cli.shared import parsed, run_in_account, table
from stampbook.kit.context import CallContext

app = typer.Typer(help="Cards.", no_args_is_help=True)


@app.command("create")
def card_create(
    account: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option(help="cardNm")],
    max_stamps: Annotated[int, typer.Option(help="maxStamps, 1–100")],
    title: Annotated[str | None, typer.Option(help="cardTtl")] = None,
    url: Annotated[str | None, typer.Option()] = None,
    stamp_img_url: Annotated[str | None, typer.Option()] = None,
    onsite_password: Annotated[
        str | None, typer.Option(help="Enables on-site stamping with this password.")
    ] = None,
    min_interval_sec: Annotated[int, typer.Option()] = 0,
) -> None:
    """Create a card; prints its cardIdx on the last line."""
    body = parsed(
        CreateCard,
        cardNm=name,
        cardTtl=title,
        maxStamps=max_stamps,
        url=url,
        stampImgUrl=stamp_img_url,
        onsiteYn="Y" if onsite_password else "N",
        onsitePwd=onsite_password,
        minIntervalSec=min_interval_sec,
    )
    typer.echo(run_in_account(account, lambda conn, ctx: cards.create(conn, ctx, body)))


@app.command("list")
def card_list(account: Annotated[str, typer.Option()]) -> None:
    """List an account's cards."""

    async def work(conn: AsyncConnection, ctx: CallContext) -> list[dict[str, Any]]:
        result = await cards.list_cards(conn, ctx, limit=100, cursor=None)
        return list(result["items"])

    table(
        run_in_account(account, work),
        ["cardIdx", "cardNm", "maxStamps", "onsiteYn", "minIntervalSec", "regYmdt"],
    )
