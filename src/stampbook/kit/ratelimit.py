"""Per-key rate limits with the ``limits`` library.

Memory storage by default (one budget per worker process); Redis when
``STAMPBOOK_REDIS_URL`` is set, so every worker on every machine shares one
budget, falling back to per-worker memory while Redis is down
(``kit/failover.py``). Headers follow the IETF RateLimit header fields draft.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter

from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.failover import FailoverStorage, redis_storage

OFF = "off"
POLICY_NAME = "default"


@lru_cache(maxsize=256)
def parse_limit(text: str) -> RateLimitItem:
    """Parse ``"6000/minute"``-style text once."""
    return parse(text)


def validate_limit(text: str) -> str:
    """Check a limit string (``N/period`` or ``off``) and return it; ValueError if bad."""
    if text.strip().lower() == OFF:
        return OFF
    try:
        parse_limit(text)
    except ValueError as exc:
        raise ValueError(f"invalid rate limit {text!r}: use e.g. 6000/minute or off") from exc
    return text


class RateLimiter:
    """Counts hits per API key and refused keys per client address; refuses with
    1201 over either budget.

    With Redis, ``storage`` is a ``FailoverStorage``: any limiter built on it
    (this one, or another throttle sharing the storage) keeps answering
    while Redis is down, counting in this worker's memory meanwhile.
    """

    def __init__(
        self,
        default_limit: str,
        redis_url: str | None = None,
        *,
        key_prefix: str = "stampbook",
        unauthorized_limit: str = OFF,
        redis_timeout: float = 0.25,
        redis_retry_max: float = 30.0,
    ) -> None:
        self.default_limit = validate_limit(default_limit)
        self.unauthorized_limit = validate_limit(unauthorized_limit)
        # Addresses over their budget of refused keys, and when (time.time()) their
        # window ends: checked before any key lookup, without I/O, so that a flood
        # of guesses costs neither the database nor the storage a round trip.
        self.blocked: dict[str, float] = {}
        self.storage: Storage = MemoryStorage()
        if redis_url:
            self.storage = FailoverStorage(
                redis_storage(redis_url, key_prefix=key_prefix, timeout=redis_timeout),
                timeout=redis_timeout,
                retry_max=redis_retry_max,
            )
        self.strategy = FixedWindowRateLimiter(self.storage)

    @property
    def shared(self) -> FailoverStorage | None:
        """The Redis-backed storage, or None when limits are per worker anyway."""
        return self.storage if isinstance(self.storage, FailoverStorage) else None

    async def hit(self, *, key_idx: int, account_limit: str | None) -> dict[str, str]:
        """Count one request; return the headers to send, or raise 1201 (HTTP 429)."""
        text = account_limit or self.default_limit
        if text.lower() == OFF:
            return {}
        item = parse_limit(text)
        identifier = str(key_idx)
        allowed = await self.strategy.hit(item, identifier)
        stats = await self.strategy.get_window_stats(item, identifier)
        reset_in = max(0, math.ceil(stats.reset_time - time.time()))
        window = item.get_expiry()
        headers = {
            "RateLimit-Policy": f'"{POLICY_NAME}";q={item.amount};w={window}',
            "RateLimit": f'"{POLICY_NAME}";r={stats.remaining};t={reset_in}',
        }
        if not allowed:
            raise StampbookError(
                Code.RATE_LIMITED, headers={**headers, "Retry-After": str(max(1, reset_in))}
            )
        return headers

    def blocked_refusal(self, address: str) -> StampbookError | None:
        """The 1201 for an address still over its budget of refused keys, else None."""
        until = self.blocked.get(address)
        if until is None:
            return None
        left = until - time.time()
        if left <= 0:
            del self.blocked[address]
            return None
        return _retry_after(left)

    async def hit_unauthorized(self, address: str) -> None:
        """Count one refused key from ``address``; raise 1201 (HTTP 429) once it is
        over ``unauthorized_limit``, and block the address until its window ends."""
        if self.unauthorized_limit == OFF:
            return
        item = parse_limit(self.unauthorized_limit)
        if await self.strategy.hit(item, "unauthorized", address):
            return
        stats = await self.strategy.get_window_stats(item, "unauthorized", address)
        if len(self.blocked) > 10_000:
            self.blocked.clear()
        self.blocked[address] = stats.reset_time
        raise _retry_after(stats.reset_time - time.time())

    async def reset(self) -> None:
        """Forget every count (used by tests and the CLI)."""
        self.blocked.clear()
        await self.storage.reset()


def _retry_after(seconds: float) -> StampbookError:
    return StampbookError(
        Code.RATE_LIMITED, headers={"Retry-After": str(max(1, math.ceil(seconds)))}
    )
