"""The database handle: what reaches the client when the database refuses."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import delete, insert, select

from stampbook.db.schema import server_setting
from stampbook.kit.db import Database, DriverPool
from stampbook.kit.errors import Code, StampbookError


@asynccontextmanager
async def database(url: str, *, pool_size: int) -> AsyncIterator[Database]:
    """A Database of its own, disposed of afterwards."""
    db = Database(url, pool_size=pool_size)
    try:
        yield db
    finally:
        await db.dispose()


async def test_a_deadlock_victim_is_answered_1902_and_keeps_nothing(postgresql_url: str) -> None:
    # PostgreSQL only: SQLite serialises writers, so two transactions cannot deadlock.
    db = Database(postgresql_url, pool_size=2)
    names = [f"test-deadlock-{secrets.token_hex(4)}-{side}" for side in "ab"]
    try:
        async with db.write() as conn:
            await conn.execute(insert(server_setting), [{"name": n, "value": "0"} for n in names])
        both_hold_one = asyncio.Barrier(2)

        async def lock_in_order(first: str, second: str) -> str:
            async with db.write() as conn:
                for name in (first, second):
                    await conn.execute(
                        server_setting.update()
                        .where(server_setting.c.name == name)
                        .values(value=first)
                    )
                    if name == first:
                        await both_hold_one.wait()
            return first

        outcomes = await asyncio.gather(
            lock_in_order(names[0], names[1]),
            lock_in_order(names[1], names[0]),
            return_exceptions=True,
        )

        refused = [o for o in outcomes if isinstance(o, StampbookError)]
        assert len(refused) == 1 and refused[0].code == Code.SERVICE_UNAVAILABLE
        survivor = next(o for o in outcomes if isinstance(o, str))
        async with db.read() as conn:
            values = (await conn.execute(
                select(server_setting.c.value).where(server_setting.c.name.in_(names))
            )).scalars().all()  # fmt: skip
        assert values == [survivor, survivor]  # the victim's first update is gone too
    finally:
        async with db.write() as conn:
            await conn.execute(delete(server_setting).where(server_setting.c.name.in_(names)))
        await db.dispose()


async def test_the_driver_pool_lends_at_most_its_size_and_the_next_caller_waits(
    database_url: str,
) -> None:
    lent = asyncio.Event()
    give_back = asyncio.Event()
    async with database(database_url, pool_size=1) as db:

        async def hold() -> None:
            async with db.driver():
                lent.set()
                await give_back.wait()

        holder = asyncio.create_task(hold())
        await lent.wait()
        waiter = asyncio.create_task(_select_one(db))
        await asyncio.sleep(0.05)
        assert not waiter.done()  # the one connection is out

        give_back.set()
        assert await asyncio.wait_for(waiter, 5) == 1
        await holder


async def test_a_released_driver_connection_goes_to_the_longest_waiter(
    database_url: str,
) -> None:
    served: list[str] = []
    async with database(database_url, pool_size=1) as db:

        async def use(name: str) -> None:
            async with db.driver():
                served.append(name)

        holding = db.driver()
        await holding.__aenter__()
        first = asyncio.create_task(use("waited"))
        await asyncio.sleep(0.01)  # it waits for the one connection
        await holding.__aexit__(None, None, None)
        # Arrives in the very step the connection comes back, before the
        # waiter has run: it must not take it from under the waiter.
        await use("arrived later")
        await first
    assert served == ["waited", "arrived later"]


class CountingEngine:
    """Just enough of an engine for DriverPool: counts the connections alive."""

    def __init__(self) -> None:
        self.alive = 0
        self.most_alive = 0
        self.pool = SimpleNamespace(timeout=lambda: 5)

    async def raw_connection(self) -> Any:
        await asyncio.sleep(0)  # opening a connection takes a moment
        self.alive += 1
        self.most_alive = max(self.most_alive, self.alive)
        return SimpleNamespace(invalidate=self._invalidated, close=self._invalidated)

    def _invalidated(self, *_exc: object) -> None:
        self.alive -= 1

    async def dispose(self) -> None:
        pass


async def test_the_slot_of_a_dropped_connection_goes_to_the_longest_waiter() -> None:
    engine = CountingEngine()
    pool = DriverPool(engine, 1)  # type: ignore[arg-type]
    served: list[str] = []

    async def take_and_give_back() -> None:
        connection = await pool.acquire()
        served.append("waited")
        pool.release(connection)

    broken = await pool.acquire()
    waiter = asyncio.create_task(take_and_give_back())
    await asyncio.sleep(0)  # it waits for the one connection
    await pool.discard(broken, OSError("connection reset"))
    # In the same step, before the waiter has opened a connection in the freed
    # slot: a newcomer must neither take the slot nor open a second connection.
    await pool.acquire()  # (bounded by the engine's 5 s pool timeout)
    served.append("arrived later")
    await waiter

    assert served == ["waited", "arrived later"]
    assert engine.most_alive == 1


async def test_a_driver_connection_lost_is_answered_1902_then_replaced(
    postgresql_url: str,
) -> None:
    # PostgreSQL only: an SQLite connection cannot be cut from outside.
    async with database(postgresql_url, pool_size=1) as db:
        async with db.driver() as conn:
            backend = await conn.fetchval("SELECT pg_backend_pid()")
        async with db.write() as conn:
            await conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(backend)})")

        with pytest.raises(StampbookError) as refused:
            await _select_one(db)
        assert refused.value.code == Code.SERVICE_UNAVAILABLE
        assert await _select_one(db) == 1  # a fresh connection took its place


async def _select_one(db: Database) -> int:
    async with db.driver() as conn:
        if db.is_sqlite:
            return int(conn.execute("SELECT 1").fetchone()[0])
        return int(await conn.fetchval("SELECT 1"))
