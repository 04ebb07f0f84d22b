"""Periodic work run beside the API: the hourly housekeeping, the statistics'
rollups and, when enabled, the webhook dispatcher and the wallet workers.

A top layer, beside ``app`` and ``cli``: the app's lifespan asks
:func:`running` to start what :func:`background_jobs` lists, and
``stampbook purge`` runs the same :func:`housekeeping` once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from typing import Any

from stampbook.accounts import service as accounts
from stampbook.config import Settings
from stampbook.kit import idempotency, metrics
from stampbook.kit.clock import utc_naive
from stampbook.kit.db import Database
from stampbook.kit.errors import StampbookError
from stampbook.kit.runtime import Runtime
from stampbook.stamps import onsite
from stampbook.stats import rollups
from stampbook.wallet import repository as wallet_repo
from stampbook.wallet.worker import run_workers as wallet_forever
from stampbook.webhooks import repository as webhook_repo
from stampbook.webhooks.dispatcher import dispatch_forever

log = logging.getLogger("stampbook")

BackgroundJob = Callable[[Runtime], Coroutine[Any, Any, None]]
PURGE_EVERY_SECONDS = 3600.0
PUBLISH_METRICS_EVERY_SECONDS = 1.0
# How stale the rollups may grow: the overview reads the rows after the
# watermark live, so this bounds that tail (a few seconds' ledger), not accuracy.
FOLD_EVERY_SECONDS = 10.0
# SQLite: the least pause between two batches of a fold that is catching up.
FOLD_YIELD_SECONDS = 0.02
# How stale the API-key list's "last used" may be (a dashboard column, not a log).
RECORD_KEY_USES_EVERY_SECONDS = 60.0


def background_jobs(settings: Settings) -> list[BackgroundJob]:
    """The periodic jobs ``stampbook serve`` runs beside the API."""
    jobs: list[BackgroundJob] = [
        housekeeping_forever,
        publish_metrics_forever,
        fold_forever,
        record_key_uses_forever,
    ]
    if settings.dispatcher_enabled:
        jobs.append(dispatch_forever)
    if settings.wallet and settings.wallet_workers_enabled:
        jobs.append(wallet_forever)
    return jobs


@contextlib.asynccontextmanager
async def running(runtime: Runtime) -> AsyncIterator[None]:
    """Run the background jobs for ``runtime``'s settings while the block runs;
    on the way out cancel them and wait for each to finish."""
    tasks = [asyncio.create_task(job(runtime)) for job in background_jobs(runtime.settings)]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            # A job's failure was logged by the job; shutdown goes on regardless.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _round_failed(what: str, exc: Exception) -> None:
    """Log a periodic job's failed round (call from its ``except``): a database
    that cannot answer now (``StampbookError``: the outage is reported once by
    ``kit/db_faults.py``, and every request meanwhile gets its 503) in one
    line; anything else, a defect, with its traceback."""
    if isinstance(exc, StampbookError):
        log.warning("%s paused: %s; will retry", what, exc.code.name)
    else:
        log.exception("%s failed; will retry", what)


async def housekeeping(runtime: Runtime) -> tuple[int, int]:
    """Purge expired Idempotency-Keys, old settled webhook messages, spent
    on-site password counters and old failed wallet jobs; returns how many
    keys and messages went."""
    now = utc_naive(runtime.clock.now())
    settings = runtime.settings
    async with runtime.db.write() as conn:
        keys = await idempotency.purge(
            conn, now=now, retention_hours=settings.idempotency_retention_hours
        )
        messages = await webhook_repo.purge_settled(
            conn, before=now - timedelta(days=settings.webhook_retention_days)
        )
        # On-site password counters that count nothing any more (one row per
        # client address that ever guessed): not worth a line in the report.
        await onsite.purge(conn, now=now, lock_minutes=settings.lockout_minutes)
        # Wallet jobs that failed for good, kept as long as failed webhook messages.
        await wallet_repo.purge_failed(
            conn, before=now - timedelta(days=settings.webhook_retention_days)
        )
    return keys, messages


async def housekeeping_forever(runtime: Runtime) -> None:
    """Run ``housekeeping`` every hour, beside the API."""
    while True:
        try:
            keys, messages = await housekeeping(runtime)
            if keys or messages:
                log.info(
                    "purged %d expired idempotency keys and %d old webhook messages",
                    keys,
                    messages,
                )
        except Exception as exc:
            _round_failed("housekeeping", exc)
        await asyncio.sleep(PURGE_EVERY_SECONDS)


async def record_key_uses(runtime: Runtime) -> int:
    """Write down the key uses this worker saw since the last call (the
    dashboard's "last used"); returns how many keys. On failure they are
    kept for the next call."""
    uses, runtime.key_uses = runtime.key_uses, {}
    if not uses:
        return 0
    try:
        async with runtime.db.write() as conn:
            await accounts.record_key_uses(conn, {k: utc_naive(at) for k, at in uses.items()})
    except BaseException:
        for key_idx, at in uses.items():  # a use seen meanwhile is newer
            runtime.key_uses.setdefault(key_idx, at)
        raise
    return len(uses)


async def record_key_uses_forever(runtime: Runtime) -> None:
    """Every ``RECORD_KEY_USES_EVERY_SECONDS``, and once more on the way out,
    write down the key uses this worker saw."""
    try:
        while True:
            await asyncio.sleep(RECORD_KEY_USES_EVERY_SECONDS)
            try:
                await record_key_uses(runtime)
            except Exception as exc:
                _round_failed("recording when API keys were last used", exc)
    finally:
        # Shutdown: what the last minute saw is not lost (bounded, best effort).
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await record_key_uses(runtime)


async def publish_metrics_forever(runtime: Runtime) -> None:
    """Every second, publish this worker's counts and its database pools' use
    for /metrics: a scrape is answered by one worker, which reads the others'
    values as they last published them."""
    while True:
        metrics.flush()
        metrics.sample_pools(runtime.db.pool_use())
        await asyncio.sleep(PUBLISH_METRICS_EVERY_SECONDS)


async def fold_rollups(db: Database, *, rows: int | None = None) -> int:
    """Fold the ledger into the statistics' rollups, a batch per transaction
    (``rows``, by default the database's batch size), until a batch comes
    back short: caught up with the ledger, or (PostgreSQL) its newest rows
    seen, to fold once settled. Returns how far the watermark moved. Safe
    beside other workers doing the same (``stats/rollups.py``).

    A short batch ends the call rather than another batch being tried: under
    a steady stream of adds there is always one more row, and a fold of one
    row costs as much as a fold of a thousand (measured: 10 ms of CPU per
    add on SQLite when the job chased every new row)."""
    if rows is None:
        rows = rollups.SQLITE_FOLD_BATCH_ROWS if db.is_sqlite else rollups.FOLD_BATCH_ROWS
    moved = 0
    while True:
        began = time.monotonic()
        async with db.write() as conn:
            step = await rollups.fold_batch(conn, rows=rows)
        if step is None:
            return moved
        moved += step
        if step < rows:
            return moved
        if db.is_sqlite:
            # Catching up, batch after batch: SQLite's one writer is let go
            # for as long as a batch held it, or the other workers' adds wait
            # behind the whole backlog (seen: an 8 s p99 after an import-
            # sized burst).
            await asyncio.sleep(max(FOLD_YIELD_SECONDS, time.monotonic() - began))


async def fold_forever(runtime: Runtime) -> None:
    """Fold the ledger every ``FOLD_EVERY_SECONDS``, beside the API."""
    await fold_until(runtime.db, asyncio.Event())


async def fold_until(db: Database, stop: asyncio.Event) -> None:
    """Fold the ledger every ``FOLD_EVERY_SECONDS`` until ``stop`` is set
    (``stampbook worker`` runs it beside the dispatcher); a round is skipped
    while the ledger grows fast, up to a cap (``rollups.Pace``)."""
    pace = rollups.Pace()
    while not stop.is_set():
        try:
            async with db.read() as conn:
                due = await pace.allows_fold(conn, time.monotonic())
            if due:
                await fold_rollups(db)
        except Exception as exc:
            _round_failed("folding the statistics' rollups", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), FOLD_EVERY_SECONDS)
