"""API keys -> a typed principal: the check every API request passes before
its body is read.

It sits above the feature rooms (it looks keys up through the accounts room)
and beside ``app``, which hands ``admit`` to the kit's intake middleware; the
principal it makes is the kit's plain ``Principal``, so routes and services
never import this module (the import-linter contract in pyproject.toml says so).

Each worker caches the principal of every good key it has seen, so that in
the steady state a request is admitted with no database round trip. The
cache is only trusted while it is known to be current: the database counts
every change to ``api_key`` and ``account`` (triggers, migration 0005), and
``KeyWatch`` reads that count every ``POLL_SECONDS`` on a connection of its
own (on PostgreSQL it also LISTENs, and the trigger's NOTIFY wakes it at
once). An entry is used only if it was looked up under the count last read,
and that read began less than ``TRUST_SECONDS`` ago; otherwise the key is
looked up. So a revocation committed at T is honoured by every worker by
T + ``TRUST_SECONDS``, whether the watch keeps up, stalls or loses its
connection. Unknown keys are never cached (a new key works at once; refused
keys are counted and blocked per address instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from sqlalchemy import select
from sqlalchemy.engine import make_url
from starlette.types import Scope

from stampbook.accounts.service import principal_for_key
from stampbook.db.schema import cache_generation
from stampbook.kit.call import Principal, admitted
from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.remote import client_address
from stampbook.kit.runtime import Runtime

AUTH_SCHEME = "apikey"
MAX_KEY_LENGTH = 200
# Past this many cached keys the cache starts over, so a stream of unknown
# keys cannot grow a worker's memory without bound.
MAX_CACHED_KEYS = 10_000
# How often each worker reads the count of credential changes, and for how
# long after a read began its cache is trusted: the bound on a revocation.
POLL_SECONDS = 0.25
TRUST_SECONDS = 0.8
RECONNECT_SECONDS = 1.0
CREDENTIALS_CHANNEL = "stampbook_credentials"  # the trigger's NOTIFY (migration 0005)
GENERATION_SQL = str(
    select(cache_generation.c.generation)
    .where(cache_generation.c.name == "credentials")
    .compile(compile_kwargs={"literal_binds": True})
)

log = logging.getLogger("stampbook.auth")


async def admit(scope: Scope, authorization: str) -> Principal:
    """Check an API request's key from its ``Authorization`` header alone, before
    anything reads its body, and count it against the rate limits.

    A missing, malformed, unknown or revoked key is 1101 (HTTP 401), counted
    against the client address's budget of refused keys; an address over that
    budget is 1201 (HTTP 429) for every request until its window ends, without
    a key lookup. The principal and the RateLimit headers are left in the
    scope's state (``kit.call.admitted``), where ``authenticate`` and the
    intake (which adds the headers to the response) find them.
    """
    runtime: Runtime = scope["app"].state.runtime
    limiter = runtime.limiter
    address = client_address(scope)
    blocked = limiter.blocked_refusal(address)
    if blocked is not None:
        raise blocked
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    principal = None
    if scheme.lower() == AUTH_SCHEME and key and len(key) <= MAX_KEY_LENGTH:
        principal = await _lookup(runtime, key)
    if principal is None:
        await limiter.hit_unauthorized(address)
        raise StampbookError(Code.UNAUTHORIZED)
    assert principal.key_idx is not None
    headers = await limiter.hit(key_idx=principal.key_idx, account_limit=principal.rate_limit)
    runtime.key_uses[principal.key_idx] = runtime.clock.now()  # "last used", flushed by a job
    admitted(scope, principal, headers)
    return principal


@dataclass(frozen=True, slots=True)
class _Entry:
    generation: int | None  # None: a plain TTL entry (the watch is off)
    expires: float  # time.monotonic(); inf without STAMPBOOK_AUTH_CACHE_SECONDS
    principal: Principal | None


async def _lookup(runtime: Runtime, key: str) -> Principal | None:
    """The key's principal: from this worker's cache while it is current (see
    the module's docstring), else from the database."""
    watch: KeyWatch | None = runtime.key_watch
    ttl = runtime.settings.auth_cache_seconds
    if watch is None and ttl <= 0:
        return await principal_for_key(runtime.db, key=key)
    now = time.monotonic()
    generation = watch.current() if watch is not None else None
    entry: _Entry | None = runtime.key_cache.get(key)
    if entry is not None and entry.expires > now and entry.generation == generation:
        return entry.principal
    # One lookup per key at a time: when an entry goes stale under load, every
    # request in flight would otherwise query the database at once.
    shared = (key, generation)
    pending = runtime.key_lookups.get(shared)
    if pending is None:
        pending = asyncio.ensure_future(principal_for_key(runtime.db, key=key))
        runtime.key_lookups[shared] = pending
        pending.add_done_callback(lambda _: runtime.key_lookups.pop(shared, None))
    principal: Principal | None = await asyncio.shield(pending)
    if watch is not None and (generation is None or principal is None):
        return principal  # not known to be current, or an unknown key: not kept
    if len(runtime.key_cache) > MAX_CACHED_KEYS:
        runtime.key_cache.clear()
    runtime.key_cache[key] = _Entry(generation, now + ttl if ttl > 0 else math.inf, principal)
    return principal


Read = Callable[[], Awaitable[int]]


class KeyWatch:
    """This worker's reading of the count of credential changes."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.generation: int | None = None
        self._read_began = -math.inf
        self._wake = asyncio.Event()

    def current(self) -> int | None:
        """The count, while the last read that gave it began less than
        ``TRUST_SECONDS`` ago; None when the cache must not be trusted."""
        if time.monotonic() - self._read_began > TRUST_SECONDS:
            return None
        return self.generation

    async def run(self) -> None:
        """Read the count every ``POLL_SECONDS`` (or when notified) until cancelled,
        reconnecting after any failure."""
        while True:
            try:
                async with self._reader() as read:
                    while True:
                        began = time.monotonic()
                        # asyncio.timeout, not wait_for: on Python 3.11 wait_for
                        # may swallow a cancellation that meets a finished read,
                        # and the app's shutdown would wait for this task forever.
                        async with asyncio.timeout(TRUST_SECONDS):
                            generation = await read()
                        if generation != self.generation:
                            self.generation = generation
                            self.runtime.key_cache.clear()
                        self._read_began = began
                        self._wake.clear()
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(POLL_SECONDS):
                                await self._wake.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the cache goes untrusted by itself; try again
                log.warning("key cache watch interrupted (%s); retrying", type(exc).__name__)
                await asyncio.sleep(RECONNECT_SECONDS)

    @contextlib.asynccontextmanager
    async def _reader(self) -> AsyncIterator[Read]:
        """A connection of the watch's own (never one a request waits for) and
        how to read the count on it."""
        db = self.runtime.db
        if not db.is_sqlite:
            url = make_url(db.url).set(drivername="postgresql")
            conn = await asyncpg.connect(
                url.render_as_string(hide_password=False),
                timeout=self.runtime.settings.db_connect_timeout_seconds,
            )
            try:
                await conn.add_listener(CREDENTIALS_CHANNEL, lambda *_: self._wake.set())
                yield lambda: conn.fetchval(GENERATION_SQL)
            finally:
                await conn.close()
            return
        if db.sqlite_path is None:  # an in-memory database: the general path
            yield lambda: _read_general(self.runtime)
            return
        lite = sqlite3.connect(db.sqlite_path, check_same_thread=False)
        try:
            yield lambda: _read_sqlite(lite)
        finally:
            lite.close()


async def _read_sqlite(conn: sqlite3.Connection) -> int:
    # A one-row read of a WAL database: microseconds, on the loop's thread.
    return int(conn.execute(GENERATION_SQL).fetchone()[0])


async def _read_general(runtime: Runtime) -> int:
    async with runtime.db.read() as conn:
        return int((await conn.exec_driver_sql(GENERATION_SQL)).scalar_one())


@contextlib.asynccontextmanager
async def watching(runtime: Runtime) -> AsyncIterator[None]:
    """Within the block, ``runtime``'s key cache is watched (when
    ``STAMPBOOK_KEY_CACHE`` is on): the app's lifespan runs this."""
    if not runtime.settings.key_cache:
        yield
        return
    watch = KeyWatch(runtime)
    task = asyncio.create_task(watch.run(), name="stampbook-key-watch")
    runtime.key_watch = watch
    try:
        yield
    finally:
        runtime.key_watch = None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
