"""The database handle: one async engine, write and read transactions.

SQLite is set up for concurrency as docs/architecture.md says: WAL, a busy timeout,
foreign keys on, and write transactions opened with ``BEGIN IMMEDIATE`` (a
deferred transaction that reads and then writes can fail with SQLITE_BUSY at
once, whatever the busy timeout). Within one process, SQLite writers also
queue on an asyncio lock: correctness never depends on it (the database
serialises writers across processes), but it keeps one process's writers from
spinning in SQLite's busy handler against each other.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncTransaction,
    create_async_engine,
)
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from stampbook.config import async_database_url
from stampbook.kit import sqlite_inline
from stampbook.kit.errors import Code, StampbookError

SQLITE_BUSY_TIMEOUT_MS = 30_000
# How often a waiting writer tries SQLite's write lock again (inline driver).
WRITE_LOCK_POLL_SECONDS = 0.0003


class Database:
    """An async engine plus the transaction shapes the services use."""

    def __init__(
        self, url: str, *, pool_size: int = 10, hot_pool_size: int = 4, echo: bool = False
    ) -> None:
        self.url = async_database_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        self._inline = False
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            path = make_url(self.url).database
            if path and path != ":memory:" and not path.startswith("file:"):
                # A file database runs on the loop's thread (kit/sqlite_inline.py).
                kwargs["async_creator"] = sqlite_inline.creator(
                    path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000
                )
                self._inline = True
                # Fixed, like PostgreSQL's: no connection opened per request.
                kwargs.update(pool_size=pool_size, max_overflow=0)
        else:
            # A fixed pool: overflow connections are closed as soon as they
            # are returned, so a steady load above pool_size opened (TLS
            # probe, backend fork) and closed a PostgreSQL connection per
            # request. Waiting a moment for a pooled connection is cheaper.
            kwargs.update(pool_size=pool_size, max_overflow=0, pool_pre_ping=False)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        # The write flag is read by SQLite's begin listener (BEGIN IMMEDIATE);
        # PostgreSQL needs none, and an option-carrying engine costs a little
        # on every checkout, so it writes through the engine itself.
        self._write_engine = (
            self.engine.execution_options(stampbook_write=True) if self.is_sqlite else self.engine
        )
        # PostgreSQL reads run in autocommit: a transaction would cost a BEGIN
        # and a ROLLBACK round trip around every read, and buys nothing under
        # READ COMMITTED, where each statement takes its own snapshot anyway.
        # They get a pool of their own, opened in autocommit, because switching
        # a pooled connection's isolation level per checkout (and back on
        # return) cost ~70 us a read. SQLite keeps its deferred transaction
        # (one snapshot for the read) on the one engine.
        self._read_engine = (
            self.engine
            if self.is_sqlite
            else create_async_engine(self.url, isolation_level="AUTOCOMMIT", **kwargs)
        )
        self._write_lock: asyncio.Lock | None = None
        if self.is_sqlite:
            _configure_sqlite(self.engine, inline=self._inline)
            self._write_lock = asyncio.Lock()
        # The hot paths' driver connections (``driver()``): an engine of their
        # own, whose connections stay checked out in a small pool of ours.
        driver_engine = create_async_engine(
            self.url, **kwargs, **({} if self.is_sqlite else {"isolation_level": "AUTOCOMMIT"})
        )
        if self.is_sqlite:
            _configure_sqlite(driver_engine, inline=self._inline)
        self._drivers = DriverPool(driver_engine, min(hot_pool_size, pool_size))

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block ends, rolled back on error."""
        lock = self._write_lock or nullcontext()
        if not self._inline:
            async with lock, _translate_unavailable(), self._write_engine.begin() as conn:
                yield conn
            return
        async with lock, _translate_unavailable(), self._write_engine.connect() as conn:
            transaction = await self._begin_immediate(conn)
            try:
                yield conn
            except BaseException:
                await transaction.rollback()
                raise
            await transaction.commit()

    @property
    def has_driver_path(self) -> bool:
        """True when ``driver`` and ``driver_write`` are available: PostgreSQL and
        file SQLite (an in-memory SQLite database keeps aiosqlite's thread)."""
        return self._inline or not self.is_sqlite

    @asynccontextmanager
    async def driver(self) -> AsyncIterator[Any]:
        """A pooled connection of the driver itself, for the hot paths' precompiled SQL.

        PostgreSQL: an asyncpg connection in autocommit (each statement is its
        own transaction); SQLite: the inline ``sqlite3`` connection, in
        autocommit too. SQLAlchemy's per-statement machinery (cache key, result
        adaptation, the greenlet hop) costs three to four times the driver's
        own CPU, which on the add and validate paths is most of a request.
        """
        async with _translate_unavailable():
            pooled = await self._drivers.acquire()
            try:
                driver = pooled.driver_connection
                yield driver._conn if self._inline else driver  # type: ignore[union-attr]
            except _LOST_CONNECTION as exc:
                await self._drivers.discard(pooled, exc)
                raise StampbookError(Code.SERVICE_UNAVAILABLE) from exc
            except BaseException:
                self._drivers.release(pooled)
                raise
            self._drivers.release(pooled)

    @asynccontextmanager
    async def driver_write(self) -> AsyncIterator[Any]:
        """``driver`` for a write: on SQLite, inside a ``BEGIN IMMEDIATE``
        transaction committed when the block ends and rolled back on error; on
        PostgreSQL, autocommit (the caller sends one statement)."""
        if not self._inline:
            async with self.driver() as conn:
                yield conn
            return
        assert self._write_lock is not None
        async with self._write_lock, self.driver() as conn:
            await _take_write_lock(conn)
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    async def _begin_immediate(self, conn: AsyncConnection) -> AsyncTransaction:
        """``BEGIN IMMEDIATE`` without blocking the event loop.

        The inline driver would block the whole loop in SQLite's busy handler
        while another process holds the write lock, so the lock is tried here
        on the sqlite3 connection itself with no busy timeout and, while it is
        taken, waited for asleep (a transaction holds it for about a
        millisecond), within the same overall timeout. SQLAlchemy's transaction
        then starts on the open one (see ``_on_begin``). Each try is a few
        microseconds: retrying through SQLAlchemy's begin cost more CPU than
        the transactions themselves when two workers wrote at once.
        """
        raw = (await conn.get_raw_connection()).driver_connection._conn  # type: ignore[union-attr]
        await _take_write_lock(raw)
        try:
            return await conn.begin()
        except BaseException:
            raw.rollback()
            raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only connection: a deferred transaction on SQLite (readers never
        block writers), autocommit statements on PostgreSQL (see ``__init__``)."""
        async with _translate_unavailable(), self._read_engine.connect() as conn:
            yield conn

    async def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self._drivers.close()
        await self.engine.dispose()
        if self._read_engine is not self.engine:
            await self._read_engine.dispose()


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


# Driver errors that mean the connection itself is gone, or cannot be trusted
# (the pool must drop it). A backend terminated under a connection surfaces,
# depending on timing, as the server's shutdown notice (class 57, operator
# intervention), as a closed connection, or as asyncpg's protocol state error.
_LOST_CONNECTION = (
    OSError,
    TimeoutError,
    sqlite3.OperationalError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
)


async def _take_write_lock(raw: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE`` on a sqlite3 connection without blocking the loop:
    tried with no busy timeout and, while another process holds the lock,
    retried asleep within the usual timeout (1902 past it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SQLITE_BUSY_TIMEOUT_MS / 1000
    raw.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or loop.time() > deadline:
                    raise StampbookError(Code.SERVICE_UNAVAILABLE) from exc
            await asyncio.sleep(WRITE_LOCK_POLL_SECONDS)
    finally:
        raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


@asynccontextmanager
async def _translate_unavailable() -> AsyncIterator[None]:
    """Turn a lost or locked database into the 1902 envelope instead of a 500."""
    try:
        yield
    except StampbookError:
        raise
    except (TimeoutError, OSError) as exc:
        raise StampbookError(Code.SERVICE_UNAVAILABLE) from exc
    except OperationalError as exc:
        raise StampbookError(Code.SERVICE_UNAVAILABLE) from exc
    except DBAPIError as exc:
        if exc.connection_invalidated or _sqlstate(exc) in RETRYABLE_SQLSTATES:
            raise StampbookError(Code.SERVICE_UNAVAILABLE) from exc
        raise


# A deadlock or serialization failure rolled the transaction back: nothing
# was written, and the same request sent again (same Idempotency-Key) is
# answered correctly, which is what 1902 asks of the client.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def _sqlstate(exc: DBAPIError) -> str | None:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return str(code) if code else None


def _configure_sqlite(engine: AsyncEngine, *, inline: bool) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over BEGIN from the driver so we can choose IMMEDIATE for writes.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("stampbook_write", False)
        if not inline:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
            return
        # The inline driver's sqlite3 connection, spoken to directly: these are
        # three tiny statements on every transaction, and SQLAlchemy's
        # execution machinery costs far more than SQLite does to run them.
        raw = conn.connection.driver_connection._conn  # type: ignore[union-attr]
        if write:
            # Database._begin_immediate has normally taken the write lock already;
            # any other writer takes it here (waiting in SQLite's busy handler).
            if not raw.in_transaction:
                raw.execute("BEGIN IMMEDIATE")
            return
        raw.execute("BEGIN")
