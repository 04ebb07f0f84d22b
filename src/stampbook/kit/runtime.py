"""The per-app runtime: settings, database, clock and limiter, built once per app."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from stampbook.config import Settings
from stampbook.kit.clock import Clock
from stampbook.kit.db import Database, DatabaseLimits
from stampbook.kit.ratelimit import RateLimiter
from stampbook.kit.readiness import ReadinessProbe


@dataclass
class Runtime:
    """Everything a request handler reaches through ``request.app.state.runtime``."""

    settings: Settings
    db: Database
    clock: Clock
    limiter: RateLimiter
    # API-key lookups by key, and the watch that says when they are stale
    # (stampbook/auth.py; the kit holds them without knowing their types).
    key_cache: dict[str, Any] = field(default_factory=dict)
    key_watch: Any = None
    # Key lookups under way, shared by the requests that wait for them.
    key_lookups: dict[Any, asyncio.Future[Any]] = field(default_factory=dict)
    # When this worker last saw each key (key_idx -> aware datetime), until
    # jobs.record_key_uses_forever writes it down: never a write per request.
    key_uses: dict[int, Any] = field(default_factory=dict)
    # /readyz: one database probe at a time (kit/readiness.py).
    probe: ReadinessProbe = field(default_factory=ReadinessProbe)

    @classmethod
    def build(cls, settings: Settings, *, clock: Clock | None = None) -> Runtime:
        """Create the engine and limiter for ``settings`` (no I/O yet)."""
        return cls(
            settings=settings,
            db=Database(
                settings.database_url,
                pool_size=settings.db_pool_size,
                hot_pool_size=settings.db_hot_pool_size,
                limits=DatabaseLimits.for_settings(settings),
            ),
            clock=clock or Clock(),
            limiter=RateLimiter(
                settings.rate_limit,
                settings.redis_url,
                key_prefix=settings.redis_prefix,
                unauthorized_limit=settings.unauthorized_limit,
                redis_timeout=settings.redis_timeout_seconds,
                redis_retry_max=settings.redis_retry_max_seconds,
            ),
        )

    async def close(self) -> None:
        """Release pooled connections."""
        await self.probe.close()
        await self.db.dispose()
