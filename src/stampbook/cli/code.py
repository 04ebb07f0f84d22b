"""``stampbook code create|list|revoke``: single-use receipt codes, the same
service as the API (source CLI); ``create`` prints a terminal QR and the URL."""

from __future__ import annotations

import io
from typing import Annotated, Any

import segno
import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.cli.shared import parsed, run_in_account, table
from stampbook.codes import service as codes
from stampbook.codes.schemas import CreateCode
from stampbook.kit.context import CallContext

app = typer.Typer(help="Single-use receipt codes.", no_args_is_help=True)


def terminal_qr(url: str) -> str:
    """``url`` as a QR code drawn with block characters (no colour codes), for
    a terminal or a receipt printer's text mode."""
    buffer = io.StringIO()
    segno.make(url, error="m", micro=False).terminal(out=buffer, compact=True, border=2)
    return buffer.getvalue()


@app.command("create")
def code_create(
    account: Annotated[str, typer.Option()],
    card: Annotated[int, typer.Option(help="cardIdx")],
    ttl: Annotated[int, typer.Option(help="Seconds the code is valid, 30–604800.")] = 600,
    stamps: Annotated[int, typer.Option(help="Stamps the code gives, 1–10.")] = 1,
    memo: Annotated[str | None, typer.Option()] = None,
    qr: Annotated[bool, typer.Option(help="Draw the QR code above the URL.")] = True,
) -> None:
    """Create a code; prints its QR code, then its URL on the last line."""
    body = parsed(CreateCode, cardIdx=card, stamps=stamps, ttlSec=ttl, memo=memo)
    created = run_in_account(account, lambda conn, ctx: codes.create(conn, ctx, body))
    if qr:
        typer.echo(terminal_qr(created["url"]), nl=False)
    typer.echo(f"codeIdx {created['codeIdx']}, valid until {created['expiresYmdt']}")
    typer.echo(created["url"])


@app.command("list")
def code_list(
    account: Annotated[str, typer.Option()],
    card: Annotated[int | None, typer.Option(help="Only this cardIdx.")] = None,
) -> None:
    """List an account's codes, newest first (the codes themselves are not kept)."""

    async def work(conn: AsyncConnection, ctx: CallContext) -> list[dict[str, Any]]:
        result = await codes.list_codes(conn, ctx, card_idx=card, limit=100, cursor=None)
        return list(result["items"])

    table(
        run_in_account(account, work),
        ["codeIdx", "cardIdx", "stamps", "state", "expiresYmdt", "usedStampIdx", "memo"],
    )


@app.command("revoke")
def code_revoke(
    account: Annotated[str, typer.Option()],
    code_idx: Annotated[int, typer.Argument(help="codeIdx")],
) -> None:
    """Revoke an unused code."""
    run_in_account(account, lambda conn, ctx: codes.revoke(conn, ctx, code_idx=code_idx))
    typer.echo(f"revoked {code_idx}")
