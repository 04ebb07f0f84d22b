"""``stampbook wallet check``: is the wallet configuration usable?"""

from __future__ import annotations

import typer

from stampbook.cli.shared import load_settings
from stampbook.kit.clock import Clock
from stampbook.wallet.credentials import check as check_wallet

app = typer.Typer(help="Apple Wallet and Google Wallet passes (docs/wallet.md).")


@app.command("check")
def check() -> None:
    """Check the wallet settings: files readable, certificate and key match, not
    expired, the WWDR intermediate present; exits 1 on any error."""
    lines = check_wallet(load_settings(), now=Clock().now())
    for line in lines:
        typer.echo(line, err=line.startswith("error"))
    if any(line.startswith("error") for line in lines):
        raise typer.Exit(1)
