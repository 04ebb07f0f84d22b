"""The dispatcher: claims due messages, posts them signed, records every attempt.

Any number of dispatchers (``stampbook worker`` processes, and the one inside
``stampbook serve``) share the outbox: a claim is a lease written to the
message row (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two never take the
same message at once, and a dispatcher that dies mid-batch only delays its
messages until the lease runs out. Delivery is therefore at-least-once; the
``webhook-id`` is the same on every attempt, so a receiver can drop a repeat.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
import random
import secrets
import socket
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import httpx

from stampbook.kit import metrics
from stampbook.kit.clock import Clock, utc_naive
from stampbook.kit.db import Database
from stampbook.kit.runtime import Runtime
from stampbook.webhooks import outbox, pinning, safety, signing
from stampbook.webhooks import repository as repo
from stampbook.webhooks.schedule import DEFAULT_JITTER, Decision, Verdict, decide

log = logging.getLogger("stampbook.webhooks")


DEFAULT_BATCH_SIZE = 32
DEFAULT_POLL_SECONDS = 1.0
LEASE_MARGIN_SECONDS = 5.0
# The delivery log keeps this much of an answer, as plain text: enough to see
# why a receiver refused, never a copy of what it serves.
EXCERPT_CHARS = 512
EXCERPT_BYTES = 4 * EXCERPT_CHARS  # the most that many characters take in UTF-8
ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Response:
    """What one POST came to: an HTTP status, or an error instead of one."""

    status_code: int | None
    latency_ms: int
    excerpt: str | None = None
    error: str | None = None
    retry_after: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt of one message, as the dispatcher settled it."""

    msg_id: str
    webhook_idx: int
    response: Response
    verdict: Verdict
    next_attempt_at: datetime | None
    counted: bool  # False when the lease had been lost to another worker


def worker_name() -> str:
    """A name for this dispatcher, unique across machines and restarts."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


class Dispatcher:
    """Delivers the outbox. Use as ``async with Dispatcher(...) as d: await d.run_forever()``."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock | None = None,
        timeout: float = 15.0,
        allow_private: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
        lease: timedelta | None = None,
        jitter: float = DEFAULT_JITTER,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.db = db
        self.clock = clock or Clock()
        self.timeout = timeout
        self.allow_private = allow_private
        self.batch_size = batch_size
        # A batch is posted concurrently, so it takes about one timeout; twice
        # that plus a margin leaves room for slow database writes around it.
        self.lease = lease or timedelta(seconds=2 * timeout + LEASE_MARGIN_SECONDS)
        self.jitter = jitter
        self.rng = rng or random.Random()
        self.name = worker_name()
        # Connections go only to the addresses each delivery vetted (pinning.py);
        # ``transport`` replaces that, for tests that need a certificate of their own.
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,  # a redirect is an answer, not a new target to vet
            trust_env=False,  # never through an environment proxy
            transport=transport
            or pinning.PinnedTransport(limits=httpx.Limits(max_connections=max(batch_size, 10))),
        )

    @classmethod
    def from_runtime(cls, runtime: Runtime, **options: Any) -> Dispatcher:
        """A dispatcher on the app's database, clock and settings."""
        settings = runtime.settings
        return cls(
            runtime.db,
            clock=runtime.clock,
            timeout=settings.webhook_timeout_seconds,
            allow_private=settings.webhook_allow_private,
            **options,
        )

    async def __aenter__(self) -> Dispatcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    async def run_once(self) -> list[Outcome]:
        """Claim one batch of due messages, deliver it, record it; the outcomes."""
        now = self.clock.now()
        async with self.db.write() as conn:
            claimed = await repo.claim(
                conn,
                now=utc_naive(now),
                lease_until=utc_naive(now + self.lease),
                worker=self.name,
                limit=self.batch_size,
            )
            endpoints = await repo.endpoints_by_idx(
                conn, webhook_idxs={int(row.webhook_idx) for row in claimed}
            )
        posts = [
            self._attempt(row, endpoints[int(row.webhook_idx)])
            for row in claimed
            if int(row.webhook_idx) in endpoints
        ]
        attempts: list[_Attempt] = []
        for result in await asyncio.gather(*posts, return_exceptions=True):
            if isinstance(result, _Attempt):
                attempts.append(result)
            elif isinstance(result, Exception):
                # Its message stays leased and is tried again when the lease runs out.
                log.error("webhook delivery failed unexpectedly: %r", result)
            else:
                raise result
        if not attempts:
            return []
        try:
            counted = await self._settle(attempts)
        except Exception as exc:
            # Every message stays leased and is tried again when the lease runs out.
            log.error("webhook deliveries could not be recorded: %r", exc)
            return []
        outcomes = []
        settled_at = utc_naive(self.clock.now())
        for attempt, kept in zip(attempts, counted, strict=True):
            age = (settled_at - attempt.message.created_at).total_seconds()
            delivered = attempt.decision.verdict is Verdict.DELIVERED and kept
            metrics.count_webhook_attempt(
                attempt.decision.verdict.value,
                attempt.response.latency_ms / 1000,
                age if delivered else None,
            )
            outcome = Outcome(
                msg_id=attempt.message.msg_id,
                webhook_idx=int(attempt.message.webhook_idx),
                response=attempt.response,
                verdict=attempt.decision.verdict,
                next_attempt_at=attempt.decision.next_attempt_at,
                counted=kept,
            )
            _log_outcome(outcome, attempt.url)
            outcomes.append(outcome)
        return outcomes

    async def drain(self, *, max_rounds: int = 1000) -> list[Outcome]:
        """Run batches until none is due now; every outcome, in order."""
        outcomes: list[Outcome] = []
        for _ in range(max_rounds):
            batch = await self.run_once()
            if not batch:
                break
            outcomes.extend(batch)
        return outcomes

    async def run_forever(
        self, *, stop: asyncio.Event | None = None, poll_seconds: float = DEFAULT_POLL_SECONDS
    ) -> None:
        """Deliver until ``stop`` is set (or the task is cancelled)."""
        stop = stop or asyncio.Event()
        log.info("webhook dispatcher %s started", self.name)
        while not stop.is_set():
            try:
                delivered = await self.run_once()
            except Exception:
                log.exception("webhook dispatch round failed; will retry")
                delivered = []
            if delivered:
                continue  # more may be due, e.g. the next event of a stamp just sent
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_seconds)
        log.info("webhook dispatcher %s stopped", self.name)

    async def _attempt(self, message: Any, endpoint: Any) -> _Attempt:
        at = self.clock.now()
        in_use = [endpoint.secret]
        until = endpoint.previous_secret_until
        if endpoint.previous_secret and until is not None and until > utc_naive(at):
            in_use.append(endpoint.previous_secret)
        # Rendered here, off the request path, by the API's own renderer.
        body = outbox.deliverable(message.payload)
        headers = signing.headers(in_use, msg_id=message.msg_id, timestamp=at, body=body.decode())
        response = await self._post(endpoint.url, body, headers)
        decision = decide(
            status_code=response.status_code,
            attempts_made=int(message.attempts) + 1,
            now=self.clock.now(),
            retry_after=response.retry_after,
            jitter=self.jitter,
            rng=self.rng,
        )
        return _Attempt(message, endpoint.url, response, decision, at)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        started = time.monotonic()

        def elapsed_ms() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            # Vetted at every attempt, as the name may resolve elsewhere by now;
            # the connection then goes to exactly the addresses vetted here.
            target = await safety.vet(url, allow_private=self.allow_private)
        except safety.UnsafeUrl as exc:
            return Response(None, elapsed_ms(), error=_clip(f"refused: {exc}"))
        # Uncompressed, so that the excerpt read is the bytes that came.
        headers = {**headers, "accept-encoding": "identity"}
        try:
            # httpx's timeout bounds each read; this bounds the whole exchange.
            with pinning.pinned(target):
                async with (
                    asyncio.timeout(self.timeout),
                    self._client.stream("POST", url, content=body, headers=headers) as answer,
                ):
                    excerpt = await _read_excerpt(answer)
                    return Response(
                        answer.status_code,
                        elapsed_ms(),
                        excerpt=excerpt,
                        retry_after=answer.headers.get("retry-after"),
                    )
        except (TimeoutError, httpx.TimeoutException):
            return Response(None, elapsed_ms(), error=f"timeout after {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return Response(None, elapsed_ms(), error=_clip(f"{type(exc).__name__}: {exc}"))

    async def _settle(self, attempts: list[_Attempt]) -> list[bool]:
        """Record a batch's attempts and release their leases, in one
        transaction (one per message cost a write transaction, and on SQLite
        a turn at the write lock, per delivery); for each, whether this
        worker still held its lease (False: another worker's outcome counts)."""
        now = utc_naive(self.clock.now())
        counted = []
        async with self.db.write() as conn:
            for attempt in attempts:
                message, response, decision = attempt.message, attempt.response, attempt.decision
                values: dict[str, Any]
                if decision.verdict is Verdict.DELIVERED:
                    values = {"status": repo.DELIVERED, "delivered_at": now}
                elif decision.verdict is Verdict.RETRY:
                    assert decision.next_attempt_at is not None
                    values = {"next_attempt_at": utc_naive(decision.next_attempt_at)}
                else:
                    values = {"status": repo.FAILED}
                await repo.insert_attempt(
                    conn,
                    {
                        "message_idx": int(message.message_idx),
                        "attempted_at": utc_naive(attempt.at),
                        "status_code": response.status_code,
                        "latency_ms": response.latency_ms,
                        "response_excerpt": response.excerpt,
                        "error": response.error,
                    },
                )
                kept = await repo.settle(
                    conn, message_idx=int(message.message_idx), worker=self.name, values=values
                )
                if kept and decision.verdict is Verdict.GONE:
                    await repo.disable_endpoint(
                        conn,
                        webhook_idx=int(message.webhook_idx),
                        reason=f"410 Gone at {now:%Y-%m-%d %H:%M:%S} UTC ({message.msg_id})",
                    )
                counted.append(kept)
        return counted


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One message posted, not yet recorded."""

    message: Any
    url: str
    response: Response
    decision: Decision
    at: datetime


async def _read_excerpt(answer: httpx.Response) -> str | None:
    """The start of the answer's body as plain text (``plain_excerpt``); the
    rest is never downloaded."""
    kept = bytearray()
    async for chunk in answer.aiter_raw():
        kept.extend(chunk)
        if len(kept) >= EXCERPT_BYTES:
            break
    return plain_excerpt(bytes(kept[:EXCERPT_BYTES]), answer.charset_encoding)


def plain_excerpt(raw: bytes, charset: str | None = None) -> str | None:
    """At most ``EXCERPT_CHARS`` characters of ``raw`` decoded as text, with
    control and format characters (other than newline and tab) removed; None
    for an empty or a binary body (a NUL byte, or bytes its charset, UTF-8 by
    default, cannot decode), which the delivery log never shows."""
    if not raw or b"\x00" in raw:
        return None
    try:
        decoder = codecs.getincrementaldecoder(charset or "utf-8")(errors="strict")
    except LookupError:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    try:
        # Not final: the cut may fall inside a character, which is then dropped.
        text = decoder.decode(raw, final=False)
    except UnicodeDecodeError:
        return None
    kept = "".join(
        char for char in text if char in "\n\t" or not unicodedata.category(char).startswith("C")
    )
    return kept[:EXCERPT_CHARS] or None


def _clip(text: str) -> str:
    return text[:ERROR_CHARS]


def _log_outcome(outcome: Outcome, url: str) -> None:
    # A delivery is recorded in the delivery log (webhook_attempt) anyway; a
    # log line for each success, through the structured logger, was about 9 %
    # of a worker's CPU at the lunch rush, so successes log at debug level
    # and only what needs attention (a retry, a failure) at info.
    level = logging.DEBUG if outcome.verdict is Verdict.DELIVERED else logging.INFO
    if not log.isEnabledFor(level):
        return
    response = outcome.response
    answer = response.status_code if response.status_code is not None else response.error
    log.log(
        level,
        "webhook %s to endpoint %d (%s): %s in %d ms → %s%s",
        outcome.msg_id,
        outcome.webhook_idx,
        url,
        answer,
        response.latency_ms,
        outcome.verdict.value,
        f", next at {outcome.next_attempt_at:%Y-%m-%d %H:%M:%S}" if outcome.next_attempt_at else "",
    )


async def dispatch_forever(runtime: Runtime) -> None:
    """The background job ``stampbook serve`` runs when the dispatcher is enabled."""
    async with Dispatcher.from_runtime(runtime) as dispatcher:
        await dispatcher.run_forever()
