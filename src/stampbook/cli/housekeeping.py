"""``stampbook purge`` and ``stampbook idempotency purge``: the periodic
housekeeping of ``stampbook.jobs``, run once by hand."""

from __future__ import annotations

import asyncio

import typer

from stampbook.cli.shared import load_settings, run_db
from stampbook.jobs import housekeeping
from stampbook.kit import idempotency
from stampbook.kit.clock import Clock, utc_naive
from stampbook.kit.runtime import Runtime

idempotency_app = typer.Typer(help="Idempotency keys.", no_args_is_help=True)


def purge_everything() -> None:
    """Purge expired Idempotency-Keys and webhook messages older than the retention."""

    async def run() -> tuple[int, int]:
        runtime = Runtime.build(load_settings())
        try:
            return await housekeeping(runtime)
        finally:
            await runtime.close()

    keys, messages = asyncio.run(run())
    typer.echo(f"purged {keys} expired idempotency keys and {messages} old webhook messages")


@idempotency_app.command("purge")
def idempotency_purge() -> None:
    """Delete Idempotency-Keys older than the retention (24 h by default)."""
    removed = run_db(
        lambda conn, settings: idempotency.purge(
            conn,
            now=utc_naive(Clock().now()),
            retention_hours=settings.idempotency_retention_hours,
        )
    )
    typer.echo(f"purged {removed} expired idempotency keys")
