"""``stampbook serve`` (the API and the stamp pages under uvicorn) and
``stampbook worker`` (webhook delivery and the wallet workers on their own)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
from datetime import timedelta
from typing import Annotated

import typer

from stampbook import jobs
from stampbook.cli.shared import load_settings, redacted
from stampbook.kit import logs, metrics
from stampbook.kit.connections import connection_options
from stampbook.kit.db import Database
from stampbook.kit.runtime import Runtime
from stampbook.wallet.worker import workers_for
from stampbook.webhooks.dispatcher import DEFAULT_BATCH_SIZE, DEFAULT_POLL_SECONDS, Dispatcher


def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option(min=1)] = 1,
    dispatcher: Annotated[
        bool, typer.Option(help="Run the webhook dispatcher in this process.")
    ] = True,
) -> None:
    """Serve the API (and the stamp pages) with uvicorn."""
    import uvicorn

    if not dispatcher:
        # Through the environment, so every uvicorn worker process sees it.
        os.environ["STAMPBOOK_DISPATCHER_ENABLED"] = "false"
    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    typer.echo(
        f"Stampbook on http://{host}:{port} ({workers} worker(s)), "
        f"database {redacted(settings.database_url)}"
    )
    # Each worker keeps its metrics in this directory, so that /metrics answered
    # by any of them sums them all (kit/metrics.py); the workers are started
    # fresh by uvicorn and read the variable when they import prometheus_client.
    given = os.environ.get(metrics.MULTIPROC_DIR_ENV)
    os.environ[metrics.MULTIPROC_DIR_ENV] = metrics.prepare_directory(given)
    try:
        uvicorn.run(
            "stampbook.app:serve_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level,
            log_config=None,
            loop="auto",
            # The app writes the access log itself (kit/access.py), far cheaper
            # than uvicorn's line through logging and structlog.
            access_log=False,
            **connection_options(settings),
        )
    finally:
        if given is None:
            shutil.rmtree(os.environ.pop(metrics.MULTIPROC_DIR_ENV), ignore_errors=True)


def worker(
    batch_size: Annotated[int, typer.Option(min=1, max=500)] = DEFAULT_BATCH_SIZE,
    poll_seconds: Annotated[float, typer.Option(min=0.05)] = DEFAULT_POLL_SECONDS,
    lease_seconds: Annotated[
        float | None,
        typer.Option(
            help="How long a claim (a webhook delivery, a wallet update) lasts before another "
            "worker may take it over; keep it above the send timeouts."
        ),
    ] = None,
    once: Annotated[bool, typer.Option(help="Deliver what is due now, then exit.")] = False,
    wallet: Annotated[
        bool, typer.Option(help="Also send wallet updates (APNs, Google), when configured.")
    ] = True,
) -> None:
    """Deliver webhooks and wallet updates, and fold the ledger into the
    statistics' rollups, until interrupted (SIGINT or SIGTERM finish the
    batch in hand)."""
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    async def run() -> int:
        database = Database(settings.database_url, pool_size=settings.db_pool_size)
        runtime = Runtime.build(settings) if wallet and settings.wallet else None
        lease = timedelta(seconds=lease_seconds) if lease_seconds else None
        wallets = workers_for(runtime, lease=lease) if runtime is not None else []
        dispatcher = Dispatcher(
            database,
            timeout=settings.webhook_timeout_seconds,
            allow_private=settings.webhook_allow_private,
            batch_size=batch_size,
            lease=lease,
        )
        try:
            if once:
                for each in wallets:
                    await each.drain()
                return len(await dispatcher.drain())
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await asyncio.gather(
                dispatcher.run_forever(stop=stop, poll_seconds=poll_seconds),
                jobs.fold_until(database, stop),
                *(each.run_forever(stop=stop, poll_seconds=poll_seconds) for each in wallets),
            )
            return 0
        finally:
            await dispatcher.aclose()
            await database.dispose()
            for each in wallets:
                await each.aclose()
            if runtime is not None:
                await runtime.close()

    attempts = asyncio.run(run())
    if once:
        typer.echo(f"{attempts} delivery attempt(s) made")
