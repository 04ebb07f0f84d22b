"""The database handle: one async engine, write and read transactions.

SQLite is set up for concurrency as docs/architecture.md says: WAL, a busy timeout,
foreign keys on, and write transactions opened with ``BEGIN IMMEDIATE`` (a
deferred transaction that reads and then writes can fail with SQLITE_BUSY at
once, whatever the busy timeout). Within one process, SQLite writers also
queue on an asyncio lock: correctness never depends on it (the database
serialises writers across processes), but it keeps one process's writers from
spinning in SQLite's busy handler against each other. A writer's wait (queue
and lock) has one budget from the moment it asks to write, and the queue has
a bound, so that writers behind an external lock are all answered 1902 within
about one budget instead of one budget each in turn.

Faults are translated and logged in ``kit/db_faults.py``; a connection found
lost is dropped at once (SQLAlchemy's own disconnect check does not notice a
frozen server), so that the next request gets a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncTransaction,
    create_async_engine,
)

from stampbook.config import Settings, async_database_url
from stampbook.kit import sqlite_inline
from stampbook.kit.arrival import deadline_after
from stampbook.kit.db_faults import Fault, FaultLog, classify, translate
from stampbook.kit.driver_pool import DriverPool
from stampbook.kit.errors import Code, StampbookError

# The client gives a statement this much longer than the server does, so that a
# slow statement is cancelled by the server (the connection stays usable) and
# only a server that does not answer at all is given up on by the client.
CLIENT_TIMEOUT_MARGIN_SECONDS = 1.0

__all__ = ["Database", "DatabaseLimits", "DriverPool"]


@dataclass(frozen=True, slots=True)
class DatabaseLimits:
    """How long the database may keep a caller waiting.

    The defaults suit one-off commands (the CLI, migrations, tests): no
    statement timeout and SQLite's usual 30 s. A server takes its limits from
    the settings (``for_settings``).
    """

    connect_timeout: float = 10.0
    statement_timeout: float | None = None
    write_wait: float = 30.0
    write_queue: int | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> DatabaseLimits:
        """The limits ``stampbook serve`` runs with."""
        return cls(
            connect_timeout=settings.db_connect_timeout_seconds,
            statement_timeout=settings.db_statement_timeout_seconds,
            write_wait=settings.sqlite_write_wait_seconds,
            write_queue=settings.sqlite_write_queue,
        )


class Database:
    """An async engine plus the transaction shapes the services use."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        hot_pool_size: int = 4,
        echo: bool = False,
        limits: DatabaseLimits | None = None,
    ) -> None:
        self.url = async_database_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.limits = limits = limits or DatabaseLimits()
        self.faults = FaultLog()
        self._busy_ms = int(limits.write_wait * 1000)
        kwargs: dict[str, Any] = {"echo": echo}
        self._inline = False
        self.sqlite_path: str | None = None  # a file database's path
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": limits.write_wait}
            path = make_url(self.url).database
            if path and path != ":memory:" and not path.startswith("file:"):
                self.sqlite_path = path
                # A file database runs on the loop's thread (kit/sqlite_inline.py).
                kwargs["async_creator"] = sqlite_inline.creator(path, timeout=limits.write_wait)
                self._inline = True
                # Fixed, like PostgreSQL's: no connection opened per request.
                kwargs.update(pool_size=pool_size, max_overflow=0)
        else:
            # A fixed pool: overflow connections are closed as soon as they
            # are returned, so a steady load above pool_size opened (TLS
            # probe, backend fork) and closed a PostgreSQL connection per
            # request. Waiting a moment for a pooled connection is cheaper.
            # No pre-ping (a round trip per checkout): a connection found lost
            # is dropped instead, and SQLAlchemy then recycles the whole pool.
            kwargs.update(pool_size=pool_size, max_overflow=0, pool_pre_ping=False)
            kwargs["connect_args"] = _postgres_connect_args(limits)
            if limits.statement_timeout is not None:
                kwargs["pool_timeout"] = limits.statement_timeout
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
        self._queued_writers = 0
        if self.is_sqlite:
            _configure_sqlite(self.engine, inline=self._inline, busy_ms=self._busy_ms)
            self._write_lock = asyncio.Lock()
        # The hot paths' driver connections (``driver()``): an engine of their
        # own, whose connections stay checked out in a small pool of ours.
        driver_engine = create_async_engine(
            self.url, **kwargs, **({} if self.is_sqlite else {"isolation_level": "AUTOCOMMIT"})
        )
        if self.is_sqlite:
            _configure_sqlite(driver_engine, inline=self._inline, busy_ms=self._busy_ms)
        self._drivers = DriverPool(driver_engine, min(hot_pool_size, pool_size))

    def pool_use(self) -> dict[str, dict[str, int]]:
        """Connections by pool (``write``, ``read`` on PostgreSQL, ``driver``)
        and state (size, in_use, idle, waiting), for the metrics."""
        use = {"write": _queue_pool_use(self.engine)}
        if self._read_engine is not self.engine:
            use["read"] = _queue_pool_use(self._read_engine)
        use["driver"] = self._drivers.use()
        return use

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block ends, rolled back on error."""
        async with self._write_turn() as deadline, translate(self.faults):
            async with self._write_engine.connect() as conn:
                if self._inline:
                    transaction = await self._begin_immediate(conn, deadline)
                else:
                    transaction = await conn.begin()
                try:
                    yield conn
                    await transaction.commit()
                except BaseException as exc:
                    await _abandon(conn, transaction, exc)
                    raise
            self.faults.storage_fault = None

    @asynccontextmanager
    async def _write_turn(self) -> AsyncIterator[float]:
        """This worker's turn to write on SQLite (no-op on PostgreSQL); yields the
        deadline (the loop's clock) of the whole wait, counted from the
        request's arrival (``kit/arrival.py``).

        Past ``write_queue`` waiting writers, or past the deadline in the
        queue, the write is answered 1902 at once (and logged).
        """
        deadline = deadline_after(self.limits.write_wait)
        lock = self._write_lock
        if lock is None:
            yield deadline
            return
        if lock.locked():
            limit = self.limits.write_queue
            if limit is not None and self._queued_writers >= limit:
                self._refuse_write(f"write queue full ({limit} writers waiting)")
            self._queued_writers += 1
            try:
                async with asyncio.timeout_at(deadline):
                    await lock.acquire()
            except TimeoutError:
                self._refuse_write(f"waited {self.limits.write_wait:g} s for the write lock")
            finally:
                self._queued_writers -= 1
        else:
            await lock.acquire()
        try:
            yield deadline
        finally:
            lock.release()

    def _refuse_write(self, cause: str) -> None:
        self.faults.report(Fault(Code.SERVICE_UNAVAILABLE, f"SQLite: {cause}", False, False))
        raise StampbookError(Code.SERVICE_UNAVAILABLE)

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
        async with translate(self.faults):
            pooled = await self._drivers.acquire()
            try:
                driver = pooled.driver_connection
                yield driver._conn if self._inline else driver  # type: ignore[union-attr]
            except Exception as exc:
                fault = classify(exc)
                if fault is not None and fault.lost:
                    await self._drivers.discard(pooled, exc)
                else:
                    self._drivers.release(pooled)
                raise
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
        async with self._write_turn() as deadline, self.driver() as conn:
            await sqlite_inline.take_write_lock(conn, deadline=deadline, busy_ms=self._busy_ms)
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        self.faults.storage_fault = None

    async def _begin_immediate(self, conn: AsyncConnection, deadline: float) -> AsyncTransaction:
        """``BEGIN IMMEDIATE`` without blocking the event loop.

        The inline driver would block the whole loop in SQLite's busy handler
        while another process holds the write lock, so the lock is tried here
        on the sqlite3 connection itself with no busy timeout and, while it is
        taken, waited for asleep (a transaction holds it for about a
        millisecond), until the write's deadline. SQLAlchemy's transaction
        then starts on the open one (see ``_on_begin``). Each try is a few
        microseconds: retrying through SQLAlchemy's begin cost more CPU than
        the transactions themselves when two workers wrote at once.
        """
        raw = (await conn.get_raw_connection()).driver_connection._conn  # type: ignore[union-attr]
        await sqlite_inline.take_write_lock(raw, deadline=deadline, busy_ms=self._busy_ms)
        try:
            return await conn.begin()
        except BaseException:
            raw.rollback()
            raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only connection: a deferred transaction on SQLite (readers never
        block writers), autocommit statements on PostgreSQL (see ``__init__``)."""
        async with translate(self.faults), self._read_engine.connect() as conn:
            try:
                yield conn
            except Exception as exc:
                fault = classify(exc)
                if fault is not None and fault.lost:
                    await _invalidate(conn)
                raise

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self._drivers.close()
        await self.engine.dispose()
        if self._read_engine is not self.engine:
            await self._read_engine.dispose()


def _queue_pool_use(engine: AsyncEngine) -> dict[str, int]:
    """A SQLAlchemy pool's use, as ``DriverPool.use`` reports its own (a pool
    without those counts, e.g. an in-memory database's, reports none)."""
    pool: Any = engine.pool
    try:
        in_use, idle, size = pool.checkedout(), pool.checkedin(), pool.size()
    except AttributeError:
        return {}
    return {"size": size, "in_use": in_use, "idle": idle, "waiting": 0}


def _postgres_connect_args(limits: DatabaseLimits) -> dict[str, Any]:
    """asyncpg's connect timeout and, when set, the statement timeouts: the
    server's ``statement_timeout`` and a client-side one a little longer for a
    server that does not answer at all."""
    args: dict[str, Any] = {"timeout": limits.connect_timeout}
    if limits.statement_timeout is not None:
        args["command_timeout"] = limits.statement_timeout + CLIENT_TIMEOUT_MARGIN_SECONDS
        args["server_settings"] = {
            "statement_timeout": str(max(1, int(limits.statement_timeout * 1000)))
        }
    return args


async def _invalidate(conn: AsyncConnection) -> None:
    """Drop a connection found lost, so it never goes back to the pool."""
    with contextlib.suppress(Exception):
        await conn.invalidate()


async def _abandon(
    conn: AsyncConnection, transaction: AsyncTransaction, exc: BaseException
) -> None:
    """Roll back after ``exc``; a lost connection (or one whose rollback fails)
    is dropped instead."""
    fault = classify(exc) if isinstance(exc, Exception) else None
    if fault is None or not fault.lost:
        try:
            if transaction.is_active:
                await transaction.rollback()
            return
        except Exception:
            pass
    await _invalidate(conn)


def _configure_sqlite(engine: AsyncEngine, *, inline: bool, busy_ms: int) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over BEGIN from the driver so we can choose IMMEDIATE for writes.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
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
