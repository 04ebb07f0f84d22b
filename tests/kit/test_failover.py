"""Redis down or frozen: rate limits fail open to per-worker memory, say so once,
and go back to Redis by themselves.

The Redis here is a private ``redis-server`` on a free port that the test
stops (SIGTERM), freezes (SIGSTOP) and brings back; the machine's shared
Redis is never touched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis.asyncio

from stampbook.app import create_app
from stampbook.config import Settings
from stampbook.kit.clock import FrozenClock
from tests.conftest import Api, new_key
from tests.private_services import PrivateRedis, private_redis

PREFIX = "stampbook-failover-test"
# Each call while Redis is frozen: one Redis timeout (0.25 s) at most, plus room.
FROZEN_CALL_BOUND_SECONDS = 1.0
RECOVERY_SECONDS = 15.0


@pytest.fixture
def own_redis() -> Iterator[PrivateRedis]:
    """A private Redis, always stopped afterwards."""
    with private_redis() as server:
        yield server


@pytest.fixture
async def limited(
    settings: Settings, clock: FrozenClock, own_redis: PrivateRedis, database_url: str
) -> AsyncIterator[Api]:
    """An account on an app whose rate limits live in the private Redis."""
    changed = settings.model_copy(
        update={
            "rate_limit": "1000/hour",
            "redis_url": own_redis.url,
            "redis_prefix": PREFIX,
            "redis_timeout_seconds": 0.25,
            "redis_retry_max_seconds": 0.5,
        }
    )
    application = create_app(changed, clock=clock)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            key, account_idx = await new_key(database_url)
            yield Api(http, key, account_idx, clock)


async def redis_count(server: PrivateRedis) -> int:
    """The sum of the counters kept in the private Redis."""
    client = redis.asyncio.from_url(server.url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{PREFIX}*")]
        return sum([int(await client.get(key) or 0) for key in keys])
    finally:
        await client.aclose()


async def timed_list(api: Api) -> float:
    """One authenticated call, which must succeed; returns its duration."""
    started = time.monotonic()
    response = await api.call("GET", "card/list")
    assert (response.status_code, response.json()["code"]) == (200, 0), response.text
    return time.monotonic() - started


async def until_counted_in_redis(api: Api, server: PrivateRedis) -> None:
    """Call until a call is counted in Redis again (the limiter went back)."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    while time.monotonic() < deadline:
        before = await redis_count(server)
        await timed_list(api)
        if await redis_count(server) > before:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the rate limiter did not go back to Redis")


def outage_lines(caplog: pytest.LogCaptureFixture) -> tuple[int, int]:
    """(outage warnings, recovery lines) logged so far."""
    records = [r for r in caplog.records if r.name == "stampbook.ratelimit"]
    began = sum("Redis unavailable" in r.getMessage() for r in records)
    ended = sum("Redis answers again" in r.getMessage() for r in records)
    return began, ended


async def test_redis_stopped_then_restarted_fails_open_and_recovers(
    limited: Api, own_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stampbook.ratelimit")
    await timed_list(limited)
    assert await redis_count(own_redis) == 1  # counted in Redis

    own_redis.stop()
    for _ in range(5):
        assert await timed_list(limited) < FROZEN_CALL_BOUND_SECONDS
    ready = await limited.http.get("/readyz")
    assert ready.status_code == 200
    assert (ready.json()["status"], ready.json()["redis"]) == ("degraded", "degraded")

    own_redis.start()
    await until_counted_in_redis(limited, own_redis)
    ready = await limited.http.get("/readyz")
    assert (ready.status_code, ready.json()["status"], ready.json()["redis"]) == (200, "ok", "ok")
    assert outage_lines(caplog) == (1, 1)


async def test_redis_frozen_costs_each_call_a_bounded_wait_then_recovers(
    limited: Api, own_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stampbook.ratelimit")
    await timed_list(limited)

    own_redis.freeze()
    try:
        durations = [await timed_list(limited) for _ in range(8)]
        assert max(durations) < FROZEN_CALL_BOUND_SECONDS, durations
        started = time.monotonic()
        ready = await limited.http.get("/readyz")
        assert time.monotonic() - started < FROZEN_CALL_BOUND_SECONDS
        assert (ready.status_code, ready.json()["redis"]) == (200, "degraded")
    finally:
        own_redis.thaw()

    await until_counted_in_redis(limited, own_redis)
    assert outage_lines(caplog) == (1, 1)
