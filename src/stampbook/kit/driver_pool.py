"""The hot paths' driver connections: held checked out of an engine's pool,
lent by a small pool of our own (see ``DriverPool``)."""

from __future__ import annotations

import asyncio
from collections import deque

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn


class DriverPool:
    """Driver connections held checked out of an engine's pool, lent by a
    small pool of our own.

    SQLAlchemy's checkout and return cost two greenlet switches and its pool
    bookkeeping, about a tenth of a validate's CPU (bench/README.md). Its
    engine still opens, invalidates and closes the connections; only the
    lending between requests is ours. At most ``size`` are open. Idle ones
    are lent last in, first out, so that under light load the same few
    connections (and server processes) stay busy and warm. Callers past the
    limit wait in order of arrival, up to the engine's pool timeout: a
    released connection goes straight to the longest waiter, never to a
    request that arrived after it (with a plain queue, newcomers took
    connections from under the waiters, and a few of them waited for tens of
    milliseconds).
    """

    def __init__(self, engine: AsyncEngine, size: int) -> None:
        self._engine = engine
        self._size = size
        self._open = 0
        self._idle: list[PoolProxiedConnection] = []
        # Each waiter is handed a connection, or None: open one in a freed slot.
        self._waiters: deque[asyncio.Future[PoolProxiedConnection | None]] = deque()

    async def acquire(self) -> PoolProxiedConnection:
        """An idle connection, a new one while fewer than ``size`` are open, or
        the next one released (TimeoutError after the pool timeout)."""
        if not self._waiters:
            if self._idle:
                return self._idle.pop()
            if self._open < self._size:
                self._open += 1
                return await self._connect()
        waiter: asyncio.Future[PoolProxiedConnection | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._engine.pool.timeout()):  # type: ignore[attr-defined]
                handed = await waiter
        except BaseException:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif waiter.done() and not waiter.cancelled():
                # Handed over just as we gave up: pass it on.
                handed = waiter.result()
                if handed is None:
                    self._free_slot()
                else:
                    self.release(handed)
            raise
        # None: a slot freed by a dropped connection, already counted for us.
        return handed if handed is not None else await self._connect()

    def use(self) -> dict[str, int]:
        """Connections by state: the pool's size, lent, idle, and requests waiting."""
        idle = len(self._idle)
        return {
            "size": self._size,
            "in_use": self._open - idle,
            "idle": idle,
            "waiting": len(self._waiters),
        }

    def release(self, pooled: PoolProxiedConnection) -> None:
        """Give a connection back: to the longest waiter, else to the idle ones."""
        if not self._hand_over(pooled):
            self._idle.append(pooled)

    async def discard(self, pooled: PoolProxiedConnection, exc: BaseException) -> None:
        """Drop a connection found broken; its slot goes to a waiter, if any."""
        try:
            await greenlet_spawn(pooled.invalidate, exc)
        finally:
            self._free_slot()

    async def close(self) -> None:
        """Return every idle connection and close the engine's pool."""
        while self._idle:
            pooled = self._idle.pop()
            self._open -= 1
            await greenlet_spawn(pooled.close)
        await self._engine.dispose()

    async def _connect(self) -> PoolProxiedConnection:
        """Open a connection in a slot already counted in ``_open``."""
        try:
            return await self._engine.raw_connection()
        except BaseException:
            self._free_slot()
            raise

    def _free_slot(self) -> None:
        # The slot stays counted when a waiter takes it, so that a request
        # arriving meanwhile cannot open one more than ``size``.
        if not self._hand_over(None):
            self._open -= 1

    def _hand_over(self, pooled: PoolProxiedConnection | None) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(pooled)
                return True
        return False
