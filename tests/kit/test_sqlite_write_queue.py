"""SQLite writers behind an external lock: one budget from arrival, a bounded queue.

Another process holding SQLite's write lock (here a plain ``sqlite3``
connection in ``BEGIN IMMEDIATE``) makes this worker's writers wait. Each
waits within one budget counted from its request's arrival, queueing behind
the worker's other writers included, so all of them are answered 503/1902
within about one budget, not one budget each in turn; past the queue's bound
a writer is answered at once. When the lock is released, writes succeed.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stampbook.app import create_app
from stampbook.kit.arrival import arrived
from stampbook.kit.db import Database, DatabaseLimits
from stampbook.kit.errors import Code, StampbookError
from tests.conftest import new_key, suite_settings
from tests.servers import scratch_database

BUDGET = 1.0
CARD = {"cardNm": "Coffee", "cardTtl": "10 coffees", "maxStamps": 10}


@pytest.fixture
def sqlite_file() -> Iterator[str]:
    """A migrated SQLite database of this test's own."""
    with scratch_database("sqlite", "") as url:
        yield url


@pytest.fixture
async def keyed(sqlite_file: str) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """An app with a short write budget and a queue of three; a key's headers."""
    key, _ = await new_key(sqlite_file)
    settings = suite_settings(sqlite_file, sqlite_write_wait_seconds=BUDGET, sqlite_write_queue=3)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http, {"Authorization": f"APIKey {key}"}


class ExternalLock:
    """SQLite's write lock, held by another connection (as another process would)."""

    def __init__(self, url: str) -> None:
        self.conn = sqlite3.connect(Path(url.removeprefix("sqlite:///")), isolation_level=None)

    def __enter__(self) -> ExternalLock:
        self.conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


async def timed_create(http: httpx.AsyncClient, headers: dict[str, str]) -> tuple[int, float]:
    started = time.monotonic()
    response = await http.post("/api/stamp/v1/card/create", json=CARD, headers=headers)
    body: dict[str, Any] = response.json()
    assert list(body) == ["code", "message", "result"]
    assert response.status_code == (200 if body["code"] == 0 else 503)
    return int(body["code"]), time.monotonic() - started


async def test_queued_writers_all_answer_within_about_one_budget(
    keyed: tuple[httpx.AsyncClient, dict[str, str]], sqlite_file: str
) -> None:
    http, headers = keyed
    with ExternalLock(sqlite_file):
        started = time.monotonic()
        answers = await asyncio.wait_for(
            asyncio.gather(*[timed_create(http, headers) for _ in range(4)]), 6 * BUDGET
        )
        elapsed = time.monotonic() - started

    assert [code for code, _ in answers] == [1902] * 4
    # One budget, not one each in turn (which would be 4): the margin is for a
    # loaded 2-core machine.
    assert elapsed < 3 * BUDGET, answers
    assert (await timed_create(http, headers))[0] == 0  # released: writes go through


async def test_past_the_queue_bound_a_writer_is_answered_at_once(
    keyed: tuple[httpx.AsyncClient, dict[str, str]], sqlite_file: str
) -> None:
    http, headers = keyed
    with ExternalLock(sqlite_file):
        answers = await asyncio.wait_for(
            asyncio.gather(*[timed_create(http, headers) for _ in range(6)]), 4 * BUDGET
        )

    # One writer waits on the lock and three in the queue (its bound); the
    # other two are refused without waiting.
    assert [code for code, _ in answers] == [1902] * 6
    fast = [seconds for _, seconds in answers if seconds < BUDGET / 2]
    assert len(fast) == 2, answers
    assert (await timed_create(http, headers))[0] == 0


async def test_the_budget_counts_from_the_requests_arrival(sqlite_file: str) -> None:
    # A request that already spent most of its budget before asking to write
    # (its key check, an earlier write, the queue) gets only what is left.
    database = Database(sqlite_file, pool_size=1, limits=DatabaseLimits(write_wait=BUDGET))
    try:
        async with database.write():  # connected before another process locks
            pass
        with ExternalLock(sqlite_file):
            loop = asyncio.get_running_loop()
            with arrived(loop.time() - 0.8 * BUDGET):
                started = time.monotonic()
                with pytest.raises(StampbookError) as refused:
                    async with database.write():
                        pass
                waited = time.monotonic() - started
        assert refused.value.code == Code.SERVICE_UNAVAILABLE
        assert waited < 0.5 * BUDGET, waited
        async with database.write():  # outside a request, a wait starts when asked
            pass
    finally:
        await database.dispose()
