"""Rate-limit storage that fails open: Redis while it answers, per-worker memory
while it does not.

A rate limit protects the service; it must never be the reason the service
is down. Every Redis call has a short timeout (``STAMPBOOK_REDIS_TIMEOUT_SECONDS``)
and no retries of redis-py's own. On the first failure the storage switches
to this worker's memory (the same limits, counted per worker), logs one
warning, and leaves Redis alone for a while: it is tried again by a single
call after 0.5 s, then after twice as long each time up to
``STAMPBOOK_REDIS_RETRY_MAX_SECONDS`` (a circuit breaker), so a dead or
frozen Redis costs at most one bounded call per retry, not one per request.
The first call that succeeds again logs one line and sends the counts back
to Redis.

It is a ``limits`` storage like any other, so every strategy and every
throttle built on it gets the fallback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from limits.aio.storage import (
    MemoryStorage,
    MovingWindowSupport,
    SlidingWindowCounterSupport,
    Storage,
)
from limits.storage import storage_from_string
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger("stampbook.ratelimit")

FIRST_RETRY_SECONDS = 0.5
T = TypeVar("T")


def redis_storage(url: str, *, key_prefix: str, timeout: float) -> Storage:
    """``limits``' Redis storage on redis-py's asyncio client, with ``timeout``
    on connecting and on every answer, and no retries (the caller falls back)."""
    storage = storage_from_string(
        url if url.startswith("async+") else "async+" + url,
        key_prefix=key_prefix,
        # limits' async Redis storage defaults to the coredis client, which
        # is not installed; redis-py (a dependency) has the asyncio client.
        implementation="redispy",
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),  # type: ignore[arg-type]  # passed on to redis-py
    )
    assert isinstance(storage, Storage)
    return storage


class FailoverStorage(Storage, MovingWindowSupport, SlidingWindowCounterSupport):
    """``primary`` (Redis) while it answers; a per-worker ``MemoryStorage`` while not."""

    STORAGE_SCHEME = None

    def __init__(
        self,
        primary: Storage,
        *,
        timeout: float,
        retry_max: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.primary = primary
        self.fallback = MemoryStorage()
        self._clock = clock
        # A whole call (connect and answer) is bounded even if a socket
        # timeout were not honoured somewhere below.
        self._bound = 3 * timeout
        self._retry_max = retry_max
        self._retry_in = FIRST_RETRY_SECONDS
        self._next_try = 0.0
        self._down_since: float | None = None

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        """Nothing escapes: every primary failure is answered from memory."""
        return ()

    @property
    def degraded(self) -> bool:
        """True while Redis is considered down (limits counted per worker)."""
        return self._down_since is not None

    async def _use(self, call: Callable[[Storage], Awaitable[T]]) -> T:
        probing = self._down_since is not None
        if not probing or self._due():
            try:
                async with asyncio.timeout(self._bound):
                    result = await call(self.primary)
            except (RedisError, OSError, TimeoutError) as exc:
                self._failed(f"{type(exc).__name__}: {exc}", probing=probing)
            else:
                if self._down_since is not None:
                    await self._recovered()
                return result
        return await call(self.fallback)

    def _due(self) -> bool:
        """True for the one caller that may try Redis again now."""
        now = self._clock()
        if now < self._next_try:
            return False
        self._next_try = now + self._retry_in  # the others keep using memory meanwhile
        return True

    def _failed(self, cause: str, *, probing: bool) -> None:
        """Count a failure; only a retry's failure lengthens the wait (calls
        already under way when Redis went down fail together, once)."""
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
            log.warning(
                "Redis unavailable (%s): rate limits fall back to per-worker memory "
                "until it answers again",
                cause[:200],
            )
        elif probing:
            self._retry_in = min(self._retry_in * 2, self._retry_max)
        else:
            return
        self._next_try = now + self._retry_in

    async def _recovered(self) -> None:
        assert self._down_since is not None
        log.info(
            "Redis answers again after %.1f s: rate limits are shared again",
            self._clock() - self._down_since,
        )
        self._down_since = None
        self._retry_in = FIRST_RETRY_SECONDS
        await self.fallback.reset()

    async def healthy(self) -> bool:
        """For readiness: Redis answers a ping now (tried only when the breaker
        allows a try, so a probe never waits for a Redis known to be down)."""
        probing = self._down_since is not None
        if probing and not self._due():
            return False
        try:
            async with asyncio.timeout(self._bound):
                answered = await self.primary.check()
        except (RedisError, OSError, TimeoutError):
            answered = False
        if not answered:
            self._failed("no answer to PING", probing=probing)
            return False
        if self._down_since is not None:
            await self._recovered()
        return True

    # The storage interface, each call through ``_use``.

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Increment ``key``'s counter."""
        return await self._use(lambda s: s.incr(key, expiry, amount))

    async def get(self, key: str) -> int:
        """``key``'s counter."""
        return await self._use(lambda s: s.get(key))

    async def get_expiry(self, key: str) -> float:
        """When ``key``'s window ends."""
        return await self._use(lambda s: s.get_expiry(key))

    async def check(self) -> bool:
        """True when Redis answers (see ``healthy``)."""
        return await self.healthy()

    async def reset(self) -> int | None:
        """Forget every count, in Redis and in memory."""
        await self.fallback.reset()
        return await self._use(lambda s: s.reset())

    async def clear(self, key: str) -> None:
        """Forget ``key``'s counts."""
        await self.fallback.clear(key)
        await self._use(lambda s: s.clear(key))

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Moving window: take an entry if there is room."""
        return await self._use(lambda s: _moving(s).acquire_entry(key, limit, expiry, amount))

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """Moving window: its start and its entries."""
        return await self._use(lambda s: _moving(s).get_moving_window(key, limit, expiry))

    async def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        """Sliding window counter: take an entry if there is room."""
        return await self._use(
            lambda s: _sliding(s).acquire_sliding_window_entry(key, limit, expiry, amount)
        )

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        """Sliding window counter: the previous and current windows."""
        return await self._use(lambda s: _sliding(s).get_sliding_window(key, expiry))

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        """Sliding window counter: forget ``key``."""
        await self._use(lambda s: _sliding(s).clear_sliding_window(key, expiry))


def _moving(storage: Any) -> MovingWindowSupport:
    assert isinstance(storage, MovingWindowSupport)
    return storage


def _sliding(storage: Any) -> SlidingWindowCounterSupport:
    assert isinstance(storage, SlidingWindowCounterSupport)
    return storage
