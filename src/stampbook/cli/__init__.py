"""The ``stampbook`` command: serve, worker, migrations, accounts, keys, cards,
stamps, receipt codes, webhooks, wallet, housekeeping, demo, backup, import and export.

The forms ``stampbook db upgrade``, ``stampbook apikey create --account NAME``
(the key alone on the last line of stdout), ``apikey list|revoke``,
``account list``, ``card create|list`` and ``serve`` are part of the contract.

This module only assembles ``app`` from one module per feature; the helpers
they share live in ``stampbook.cli.shared``, and no module imports this one.
"""

from __future__ import annotations

import typer

from stampbook.cli import (
    account,
    apikey,
    backup,
    card,
    code,
    db,
    demo,
    housekeeping,
    serve,
    stamp,
    transfer,
    user,
    wallet,
    webhook,
)

app = typer.Typer(
    help="Stampbook: a self-hosted, wire-compatible stamp-card API server.", no_args_is_help=True
)
# The order here is the order of ``stampbook --help``.
app.command("purge")(housekeeping.purge_everything)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("worker")(serve.worker)
app.command("import")(transfer.import_file)
app.command("export")(transfer.export_file)
app.add_typer(db.app, name="db")
app.command("backup")(backup.backup)
app.add_typer(apikey.app, name="apikey")
app.add_typer(account.app, name="account")
app.add_typer(card.app, name="card")
app.add_typer(stamp.app, name="stamp")
app.add_typer(code.app, name="code")
app.add_typer(user.app, name="user")
app.add_typer(housekeeping.idempotency_app, name="idempotency")
app.add_typer(webhook.app, name="webhook", no_args_is_help=True)
app.add_typer(wallet.app, name="wallet", no_args_is_help=True)

__all__ = ["app"]
