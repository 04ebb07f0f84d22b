"""Rate limits per API key: a budget per window, 429/1201 beyond it, and the IETF
RateLimit headers on every authenticated response.

Memory storage is one budget per worker; with ``STAMPBOOK_REDIS_URL`` every
worker shares one budget. The Redis tests use the machine's real Redis
(127.0.0.1:6379) under a prefix of their own; a missing Redis fails them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
import redis.asyncio
from sqlalchemy import update

from stampbook.app import create_app
from stampbook.config import Settings
from stampbook.db.schema import account
from stampbook.kit.clock import FrozenClock
from stampbook.kit.db import Database
from stampbook.kit.ratelimit import RateLimiter, validate_limit
from tests.conftest import Api, new_key

REDIS_URL = "redis://127.0.0.1:6379/0"
POLICY = re.compile(r'^"default";q=(\d+);w=(\d+)$')
REMAINING = re.compile(r'^"default";r=(\d+);t=(\d+)$')

Served = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def serve(settings: Settings, clock: FrozenClock) -> Served:
    """Run an app with changed settings; yields an in-process client for it."""

    @asynccontextmanager
    async def running(**changes: object) -> AsyncIterator[httpx.AsyncClient]:
        application = create_app(settings.model_copy(update=changes), clock=clock)
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield http

    return running


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"stampbook-test-{uuid.uuid4().hex}"
    yield prefix
    client = redis.asyncio.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def keyed(http: httpx.AsyncClient, database_url: str, clock: FrozenClock) -> Api:
    key, account_idx = await new_key(database_url)
    return Api(http, key, account_idx, clock)


async def set_account_limit(database_url: str, account_idx: int, limit: str | None) -> None:
    database = Database(database_url, pool_size=1)
    try:
        async with database.write() as conn:
            await conn.execute(
                update(account).where(account.c.account_idx == account_idx).values(rate_limit=limit)
            )
    finally:
        await database.dispose()


def remaining(response: httpx.Response) -> int:
    match = REMAINING.match(response.headers["RateLimit"])
    assert match, response.headers["RateLimit"]
    return int(match.group(1))


# -- memory ---------------------------------------------------------------------------


async def test_over_the_budget_a_key_gets_429_with_1201_and_retry_after(
    serve: Served, database_url: str, clock: FrozenClock
) -> None:
    async with serve(rate_limit="3/hour") as http:
        api = await keyed(http, database_url, clock)
        answers = [await api.call("GET", "card/list") for _ in range(4)]

    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    limited = answers[-1]
    assert limited.json() == {"code": 1201, "message": limited.json()["message"], "result": None}
    assert list(limited.json()) == ["code", "message", "result"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 3600
    assert remaining(limited) == 0


async def test_every_response_carries_the_ietf_headers(
    serve: Served, database_url: str, clock: FrozenClock
) -> None:
    async with serve(rate_limit="100/minute") as http:
        api = await keyed(http, database_url, clock)
        responses = [
            await api.call("GET", "card/list"),  # success
            await api.call("PUT", "add", json={"stampIdx": 999_999}),  # business refusal
            await api.call("PUT", "add", json={"stampIdx": "x"}),  # malformed (400)
            await api.call("PUT", "add", json={}, headers={"Idempotency-Key": ""}),  # 400 too
            await api.call("GET", "validate", params={"stampIdx": 0}),  # 400 in the query
        ]

    for response in responses:
        policy = POLICY.match(response.headers["RateLimit-Policy"])
        assert policy and policy.groups() == ("100", "60"), response.headers
        assert REMAINING.match(response.headers["RateLimit"])
    assert [remaining(r) for r in responses] == [99, 98, 97, 96, 95]


async def test_a_malformed_body_is_counted_and_answered_with_the_headers(
    serve: Served, database_url: str, clock: FrozenClock
) -> None:
    async with serve(rate_limit="2/hour") as http:
        api = await keyed(http, database_url, clock)
        broken = [
            await http.put("/api/stamp/v1/add", content=b"{not json", headers=api.headers)
            for _ in range(3)
        ]

    assert [r.status_code for r in broken] == [400, 400, 429]
    assert [r.json()["code"] for r in broken] == [1002, 1002, 1201]
    assert all("RateLimit" in r.headers for r in broken)


async def test_each_key_has_its_own_budget(
    serve: Served, database_url: str, clock: FrozenClock
) -> None:
    async with serve(rate_limit="2/hour") as http:
        first, second = (
            await keyed(http, database_url, clock),
            await keyed(http, database_url, clock),
        )
        for _ in range(2):
            assert (await first.call("GET", "card/list")).status_code == 200
        assert (await first.call("GET", "card/list")).status_code == 429
        assert (await second.call("GET", "card/list")).status_code == 200


async def test_an_account_limit_overrides_the_default(
    serve: Served, database_url: str, clock: FrozenClock
) -> None:
    async with serve(rate_limit="100/hour") as http:
        strict, unlimited = (
            await keyed(http, database_url, clock),
            await keyed(http, database_url, clock),
        )
        await set_account_limit(database_url, strict.account_idx, "1/hour")
        await set_account_limit(database_url, unlimited.account_idx, "off")

        assert (
            (await strict.call("GET", "card/list"))
            .headers["RateLimit-Policy"]
            .startswith('"default";q=1;')
        )
        assert (await strict.call("GET", "card/list")).status_code == 429
        free = [await unlimited.call("GET", "card/list") for _ in range(3)]
        assert all(r.status_code == 200 and "RateLimit" not in r.headers for r in free)


async def test_off_disables_limits_and_headers(
    serve: Served, database_url: str, clock: FrozenClock
) -> None:
    async with serve(rate_limit="off") as http:
        api = await keyed(http, database_url, clock)
        responses = [await api.call("GET", "card/list") for _ in range(5)]

    assert all(r.status_code == 200 for r in responses)
    assert all("RateLimit" not in r.headers for r in responses)


async def test_refused_requests_change_nothing(
    serve: Served, database_url: str, clock: FrozenClock
) -> None:
    async with serve(rate_limit="4/hour") as http:
        api = await keyed(http, database_url, clock)
        stamp_idx = await api.stamp()  # two requests: card and stamp
        assert await api.add(stamp_idx) == 0
        assert (await api.call("GET", "card/list")).status_code == 200
        limited = await api.call(
            "PUT", "add", json={"stampIdx": stamp_idx}, headers={"Idempotency-Key": "k1"}
        )
        assert limited.status_code == 429
        await set_account_limit(database_url, api.account_idx, "off")
        retried = await api.call(
            "PUT", "add", json={"stampIdx": stamp_idx}, headers={"Idempotency-Key": "k1"}
        )
        assert (retried.status_code, "Idempotent-Replayed" in retried.headers) == (200, False)
        assert await api.count(stamp_idx) == 2


def test_limits_are_validated() -> None:
    assert validate_limit("600/minute") == "600/minute"
    assert validate_limit("OFF") == "off"
    with pytest.raises(ValueError):
        validate_limit("lots")


def test_the_default_is_6000_a_minute_per_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STAMPBOOK_RATE_LIMIT", raising=False)
    assert Settings().rate_limit == "6000/minute"
    monkeypatch.setenv("STAMPBOOK_RATE_LIMIT", "off")
    assert Settings().rate_limit == "off"


# -- Redis ---------------------------------------------------------------------------------


async def test_redis_shares_one_budget_between_workers(
    serve: Served, database_url: str, clock: FrozenClock, redis_prefix: str
) -> None:
    shared = {"rate_limit": "4/hour", "redis_url": REDIS_URL, "redis_prefix": redis_prefix}
    async with serve(**shared) as worker_a, serve(**shared) as worker_b:
        key, account_idx = await new_key(database_url)
        on_a = Api(worker_a, key, account_idx, clock)
        on_b = Api(worker_b, key, account_idx, clock)

        answers = [
            await on_a.call("GET", "card/list"),
            await on_b.call("GET", "card/list"),
            await on_a.call("GET", "card/list"),
            await on_b.call("GET", "card/list"),
            await on_a.call("GET", "card/list"),
            await on_b.call("GET", "card/list"),
        ]

    assert [r.status_code for r in answers] == [200, 200, 200, 200, 429, 429]
    assert [remaining(r) for r in answers[:4]] == [3, 2, 1, 0]
    assert answers[-1].json()["code"] == 1201
    assert int(answers[-1].headers["Retry-After"]) >= 1


async def test_redis_budgets_of_other_prefixes_do_not_mix(
    serve: Served, database_url: str, clock: FrozenClock, redis_prefix: str
) -> None:
    async with serve(rate_limit="1/hour", redis_url=REDIS_URL, redis_prefix=redis_prefix) as one:
        key, account_idx = await new_key(database_url)
        assert (await Api(one, key, account_idx, clock).call("GET", "card/list")).status_code == 200
    other_prefix = redis_prefix + "-other"
    async with serve(rate_limit="1/hour", redis_url=REDIS_URL, redis_prefix=other_prefix) as two:
        response = await Api(two, key, account_idx, clock).call("GET", "card/list")
    assert response.status_code == 200
    client = redis.asyncio.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{other_prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def test_the_redis_limiter_counts_in_redis(redis_prefix: str) -> None:
    limiter = RateLimiter("2/hour", REDIS_URL, key_prefix=redis_prefix)
    first = await limiter.hit(key_idx=1, account_limit=None)
    assert first["RateLimit"].startswith('"default";r=1;')

    client = redis.asyncio.from_url(REDIS_URL)
    try:
        stored = [key async for key in client.scan_iter(match=f"{redis_prefix}*")]
    finally:
        await client.aclose()
    assert stored, "the count should live in Redis"


async def test_a_malformed_body_with_a_bad_key_is_401_not_400(
    serve: Served, database_url: str, clock: FrozenClock
) -> None:
    async with serve(rate_limit="5/hour") as http:
        response = await http.put(
            "/api/stamp/v1/add", content=b"{not json", headers={"Authorization": "APIKey nope"}
        )

    assert (response.status_code, response.json()["code"]) == (401, 1101)
    # No key, no budget: a 401 carries no RateLimit headers.
    assert "RateLimit" not in response.headers
