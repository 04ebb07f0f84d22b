"""A code claims once: twenty real connections claim one code at the same
moment against a real two-worker server, on each database."""

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
    """One real two-worker server per database for this module."""
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
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=60) as http:
        yield Api(http, key, account_idx, FrozenClock(datetime.now(UTC)))


def codes(responses: list[httpx.Response]) -> Counter[int]:
    """How many responses carried each envelope code; never a 5xx."""
    assert all(response.status_code < 500 for response in responses), [
        response.text for response in responses if response.status_code >= 500
    ]
    return Counter(int(response.json()["code"]) for response in responses)


async def test_20_concurrent_claims_of_one_code_on_one_stamp_give_one_success(
    remote: Api,
) -> None:
    card_idx = await remote.card()
    stamp_idx = await remote.stamp(card_idx)
    created = await remote.ok("POST", "code/create", json={"cardIdx": card_idx, "stamps": 2})

    responses = await asyncio.gather(
        *(
            remote.call("PUT", "code/claim", json={"code": created["code"], "stampIdx": stamp_idx})
            for _ in range(20)
        )
    )

    assert codes(list(responses)) == {0: 1, 2402: 19}
    assert await remote.count(stamp_idx) == 2
    history = await remote.history(stamp_idx)
    assert [(e["action"], e["codeIdx"]) for e in history] == [
        ("ADD", created["codeIdx"]),
        ("CREATE", None),
    ]


async def test_20_concurrent_claims_of_one_code_on_20_stamps_give_one_stamp(remote: Api) -> None:
    card_idx = await remote.card()
    stamps = [await remote.stamp(card_idx) for _ in range(20)]
    created = await remote.ok("POST", "code/create", json={"cardIdx": card_idx})

    responses = await asyncio.gather(
        *(
            remote.call("PUT", "code/claim", json={"code": created["code"], "stampIdx": idx})
            for idx in stamps
        )
    )

    assert codes(list(responses)) == {0: 1, 2402: 19}
    counts = [await remote.count(idx) for idx in stamps]
    assert sorted(counts) == [0] * 19 + [1]
    used = await remote.ok("GET", "code/get", params={"codeIdx": created["codeIdx"]})
    assert used["usedStampIdx"] == stamps[counts.index(1)]
