"""The wallet workers: claim due jobs (a lease, as the webhook dispatcher's),
send them, and settle each with the webhook schedule's backoff
(``webhooks.schedule.decide``: at once, 5 s, 5 min, … then failed).

``apns`` jobs push to one device: 2xx is done, 410 drops the registration
(Apple: the device no longer has the pass), anything else is retried.
``google`` jobs bring one pass's object up to date (``GoogleClient.sync``).
A worker that dies mid-send only delays its jobs until its lease runs out;
another then sends them (at least once: a pass update is idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from stampbook.config import Settings
from stampbook.kit.clock import Clock, utc_naive
from stampbook.kit.db import Database
from stampbook.kit.runtime import Runtime
from stampbook.wallet import repository as repo
from stampbook.wallet import service
from stampbook.wallet.apns import ApnsClient
from stampbook.wallet.credentials import load_apns_key, load_service_account
from stampbook.wallet.google import GoogleClient
from stampbook.wallet.outbox import KIND_APNS, KIND_GOOGLE
from stampbook.webhooks.dispatcher import worker_name
from stampbook.webhooks.schedule import Verdict, decide

log = logging.getLogger("stampbook.wallet")

BATCH_SIZE = 32
POLL_SECONDS = 1.0
LEASE_MARGIN_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Sent:
    """One attempt's result: an HTTP status (None: no answer) and what went wrong."""

    status_code: int | None
    error: str | None = None
    retry_after: str | None = None


Sender = Callable[[Any], Awaitable[Sent]]


class WalletWorker:
    """Sends one kind of wallet job until stopped."""

    def __init__(
        self,
        runtime: Runtime,
        kind: str,
        send: Sender,
        *,
        timeout: float,
        close: Callable[[], Awaitable[None]] | None = None,
        lease: timedelta | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.runtime = runtime
        self.db: Database = runtime.db
        self.clock: Clock = runtime.clock
        self.kind = kind
        self.send = send
        self._close = close
        self.batch_size = batch_size
        # A batch is sent concurrently, so it takes about one timeout.
        self.lease = lease or timedelta(seconds=2 * timeout + LEASE_MARGIN_SECONDS)
        self.name = worker_name()
        self.rng = random.Random()

    async def aclose(self) -> None:
        """Close the sender's connections."""
        if self._close is not None:
            await self._close()

    async def run_once(self) -> int:
        """Claim one batch of due jobs, send and settle them; how many were claimed."""
        now = self.clock.now()
        async with self.db.write() as conn:
            jobs = await repo.claim(
                conn,
                kind=self.kind,
                now=utc_naive(now),
                lease_until=utc_naive(now + self.lease),
                worker=self.name,
                limit=self.batch_size,
            )
        results = await asyncio.gather(*(self._one(job) for job in jobs), return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                # Its job stays leased and is tried again when the lease runs out.
                log.error("wallet %s job could not be settled: %r", self.kind, result)
        return len(jobs)

    async def drain(self, *, max_rounds: int = 100) -> None:
        """Run batches until none is due now."""
        for _ in range(max_rounds):
            if not await self.run_once():
                return

    async def run_forever(
        self, *, stop: asyncio.Event | None = None, poll_seconds: float = POLL_SECONDS
    ) -> None:
        """Send until ``stop`` is set (or the task is cancelled)."""
        stop = stop or asyncio.Event()
        log.info("wallet %s worker %s started", self.kind, self.name)
        while not stop.is_set():
            try:
                if await self.run_once():
                    continue
            except Exception:
                log.exception("wallet %s round failed; will retry", self.kind)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_seconds)

    async def _one(self, job: Any) -> None:
        try:
            sent = await self.send(job)
        except Exception as exc:  # a bad pass must not stop the others
            log.exception("wallet %s job %s failed", self.kind, job.job_idx)
            sent = Sent(None, f"{type(exc).__name__}: {exc}")
        decision = decide(
            status_code=sent.status_code,
            attempts_made=int(job.attempts) + 1,
            now=self.clock.now(),
            retry_after=sent.retry_after,
            rng=self.rng,
        )
        async with self.db.write() as conn:
            if decision.verdict is Verdict.DELIVERED:
                await repo.finish(conn, job_idx=int(job.job_idx), worker=self.name)
            elif decision.verdict is Verdict.GONE and job.registration_idx is not None:
                # The device no longer has the pass: forget it (its jobs go with it).
                await repo.delete_registration(conn, registration_idx=int(job.registration_idx))
            else:
                when = decision.next_attempt_at
                await repo.settle(
                    conn,
                    job_idx=int(job.job_idx),
                    worker=self.name,
                    next_attempt_at=utc_naive(when) if when is not None else None,
                    error=sent.error or f"HTTP {sent.status_code}",
                )
        log.info(
            "wallet %s job %s: %s → %s",
            self.kind,
            job.job_idx,
            sent.status_code if sent.status_code is not None else sent.error,
            decision.verdict.value,
        )


def apns_worker(runtime: Runtime, **options: Any) -> WalletWorker:
    """The worker that pushes pass updates to devices."""
    settings = runtime.settings
    client = ApnsClient(settings, auth_key=load_apns_key(settings))

    async def send(job: Any) -> Sent:
        answer = await client.push(job.push_token)
        return Sent(answer.status_code, answer.error, answer.retry_after)

    return WalletWorker(
        runtime,
        KIND_APNS,
        send,
        timeout=settings.apns_timeout_seconds,
        close=client.aclose,
        **options,
    )


def google_worker(runtime: Runtime, **options: Any) -> WalletWorker:
    """The worker that brings Google Wallet objects up to date."""
    settings = runtime.settings
    client = GoogleClient(settings, load_service_account(settings))

    async def send(job: Any) -> Sent:
        async with runtime.db.read() as conn:
            pass_row = await repo.pass_by_idx(conn, pass_idx=int(job.pass_idx))
            if pass_row is None:
                return Sent(200)  # the pass is gone: nothing left to update
            content = await service.content_for(conn, runtime, pass_row)
        answer = await client.sync(content, serial=pass_row.serial)
        return Sent(answer.status_code, answer.error)

    return WalletWorker(
        runtime,
        KIND_GOOGLE,
        send,
        timeout=3 * settings.google_timeout_seconds,  # a token, then up to three calls
        close=client.aclose,
        **options,
    )


def workers_for(runtime: Runtime, **options: Any) -> list[WalletWorker]:
    """One worker per configured wallet."""
    settings: Settings = runtime.settings
    found: list[WalletWorker] = []
    if settings.apple_wallet:
        found.append(apns_worker(runtime, **options))
    if settings.google_wallet:
        found.append(google_worker(runtime, **options))
    return found


async def run_workers(runtime: Runtime, *, stop: asyncio.Event | None = None) -> None:
    """Run every configured wallet's worker until stopped or cancelled."""
    workers = workers_for(runtime)
    try:
        await asyncio.gather(*(worker.run_forever(stop=stop) for worker in workers))
    finally:
        for worker in workers:
            await worker.aclose()
