"""Over-stamping is impossible: many real connections race on one stamp.

Each database gets one real server (``stampbook serve --workers 2``) for the
module; every test works in a fresh account on it. The counts are checked
three ways: the codes the racers got, the stamp's count, and its ledger.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from stampbook.kit.clock import FrozenClock
from tests.conftest import DATABASES, Api, new_key
from tests.servers import RealServer, real_server

pytestmark = pytest.mark.slow

LEAKS = ("database is locked", "Traceback", "deadlock detected")


@pytest.fixture(scope="module", params=DATABASES)
def server(request: pytest.FixtureRequest) -> Iterator[RealServer]:
    """One real two-worker server per database, shared by this module's tests."""
    database_url = str(request.getfixturevalue(f"{request.param}_url"))
    with real_server(database_url, workers=2) as running:
        yield running
        log = running.log()
        for leak in LEAKS:
            assert leak not in log, log


@pytest.fixture
async def remote(server: RealServer) -> AsyncIterator[Api]:
    """A fresh account speaking to the real server over many connections."""
    key, account_idx = await new_key(server.database_url)
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=250)
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=60) as http:
        yield Api(http, key, account_idx, FrozenClock(datetime.now(UTC)))


async def race(
    api: Api, count: int, method: str, path: str, **kwargs: object
) -> list[httpx.Response]:
    """Send ``count`` identical requests at once."""
    return list(
        await asyncio.gather(*(api.call(method, path, **kwargs) for _ in range(count)))  # type: ignore[arg-type]
    )


def codes(responses: list[httpx.Response]) -> Counter[int]:
    """How many responses carried each envelope code; no 5xx, ever."""
    assert all(response.status_code < 500 for response in responses), [
        (response.status_code, response.text)
        for response in responses
        if response.status_code >= 500
    ]
    return Counter(int(response.json()["code"]) for response in responses)


def actions(history: list[dict[str, object]]) -> Counter[object]:
    """How many ledger rows of each action."""
    return Counter(event["action"] for event in history)


async def test_200_concurrent_adds_on_a_card_of_10_give_exactly_10_stamps(remote: Api) -> None:
    stamp_idx = await remote.stamp(await remote.card(maxStamps=10))

    responses = await race(remote, 200, "PUT", "add", json={"stampIdx": stamp_idx})

    assert codes(responses) == {0: 10, 2006: 190}
    assert await remote.count(stamp_idx) == 10
    assert actions(await remote.history(stamp_idx)) == {"CREATE": 1, "ADD": 10}


async def test_concurrent_adds_fill_only_the_room_left(remote: Api) -> None:
    stamp_idx = await remote.stamp(await remote.card(maxStamps=10))
    for _ in range(7):
        assert await remote.add(stamp_idx) == 0

    responses = await race(remote, 60, "PUT", "add", json={"stampIdx": stamp_idx})

    assert codes(responses) == {0: 3, 2006: 57}
    assert await remote.count(stamp_idx) == 10


async def test_50_concurrent_redeems_have_exactly_one_winner(remote: Api) -> None:
    stamp_idx = await remote.stamp(await remote.card(maxStamps=2))
    for _ in range(2):
        assert await remote.add(stamp_idx) == 0

    responses = await race(remote, 50, "PUT", "redeem", json={"stampIdx": stamp_idx})

    assert codes(responses) == {0: 1, 2005: 49}
    assert actions(await remote.history(stamp_idx))["USE"] == 1


async def test_concurrent_removes_stop_at_zero(remote: Api) -> None:
    stamp_idx = await remote.stamp(await remote.card(maxStamps=10))
    for _ in range(3):
        assert await remote.add(stamp_idx) == 0

    responses = await race(remote, 50, "PUT", "remove", json={"stampIdx": stamp_idx})

    assert codes(responses) == {0: 3, 2007: 47}
    assert await remote.count(stamp_idx) == 0
    assert actions(await remote.history(stamp_idx)) == {"CREATE": 1, "ADD": 3, "REMOVE": 3}


async def test_concurrent_adds_and_removes_keep_count_equal_to_the_ledger(remote: Api) -> None:
    stamp_idx = await remote.stamp(await remote.card(maxStamps=5))
    for _ in range(2):
        assert await remote.add(stamp_idx) == 0

    adds, removes = await asyncio.gather(
        race(remote, 60, "PUT", "add", json={"stampIdx": stamp_idx}),
        race(remote, 60, "PUT", "remove", json={"stampIdx": stamp_idx}),
    )

    added, removed = codes(adds)[0], codes(removes)[0]
    assert set(codes(adds)) <= {0, 2006} and set(codes(removes)) <= {0, 2007}
    count = await remote.count(stamp_idx)
    assert count == 2 + added - removed
    assert 0 <= count <= 5
    history = await remote.history(stamp_idx)
    assert sum(int(e["stampsAfter"]) - int(e["stampsBefore"]) for e in history) == count  # type: ignore[call-overload]
    assert actions(history) == {"CREATE": 1, "ADD": 2 + added, "REMOVE": removed}


async def test_the_minimum_interval_lets_one_of_many_concurrent_adds_through(remote: Api) -> None:
    stamp_idx = await remote.stamp(await remote.card(maxStamps=10, minIntervalSec=3600))

    responses = await race(remote, 40, "PUT", "add", json={"stampIdx": stamp_idx})

    assert codes(responses) == {0: 1, 2011: 39}
    assert await remote.count(stamp_idx) == 1


async def test_one_key_sent_20_times_in_a_row_adds_one_stamp(remote: Api) -> None:
    stamp_idx = await remote.stamp(await remote.card(maxStamps=10))
    headers = {"Idempotency-Key": "till-7-sale-1001"}

    responses = [
        await remote.call("PUT", "add", json={"stampIdx": stamp_idx}, headers=headers)
        for _ in range(20)
    ]

    assert {(r.status_code, r.content) for r in responses} == {(200, responses[0].content)}
    assert responses[0].json()["code"] == 0
    assert "Idempotent-Replayed" not in responses[0].headers
    assert all(r.headers["Idempotent-Replayed"] == "true" for r in responses[1:])
    assert await remote.count(stamp_idx) == 1
    assert actions(await remote.history(stamp_idx)) == {"CREATE": 1, "ADD": 1}


async def test_one_key_sent_20_times_at_once_adds_one_stamp(remote: Api) -> None:
    stamp_idx = await remote.stamp(await remote.card(maxStamps=10))
    headers = {"Idempotency-Key": "till-7-sale-1002"}

    responses = await race(remote, 20, "PUT", "add", json={"stampIdx": stamp_idx}, headers=headers)

    assert {(r.status_code, r.content) for r in responses} == {(200, responses[0].content)}
    assert responses[0].json()["code"] == 0
    assert sum("Idempotent-Replayed" not in r.headers for r in responses) == 1
    assert await remote.count(stamp_idx) == 1
    assert actions(await remote.history(stamp_idx)) == {"CREATE": 1, "ADD": 1}


async def test_racing_retries_of_many_keys_each_count_once(remote: Api) -> None:
    stamp_idx = await remote.stamp(await remote.card(maxStamps=30))
    keys = [f"pos-{n}" for n in range(40)]

    responses = await asyncio.gather(
        *(
            remote.call(
                "PUT", "add", json={"stampIdx": stamp_idx}, headers={"Idempotency-Key": key}
            )
            for key in keys * 3
        )
    )

    by_key: dict[str, set[bytes]] = {}
    for key, response in zip(keys * 3, responses, strict=True):
        by_key.setdefault(key, set()).add(response.content)
    assert all(len(bodies) == 1 for bodies in by_key.values())
    first_answers = codes([responses[n] for n in range(len(keys))])
    assert first_answers == {0: 30, 2006: 10}
    assert await remote.count(stamp_idx) == 30
    assert actions(await remote.history(stamp_idx))["ADD"] == 30
