"""The database handle: one async engine, write and read transactions.

SQLite is set up for concurrency as DESIGN.md asks: WAL, a busy timeout,
foreign keys on, and write transactions opened with ``BEGIN IMMEDIATE`` (a
deferred transaction that reads and then writes can fail with SQLITE_BUSY at
once, whatever the busy timeout). Within one process, SQLite writers also
queue on an asyncio lock: correctness never depends on it (the database
serialises writers across processes), but it keeps one process's writers from
spinning in SQLite's busy handler against each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from stampbook.config import async_database_url
from stampbook.kit.errors import Code, StampbookError

SQLITE_BUSY_TIMEOUT_MS = 30_000


class Database:
    """An async engine plus the transaction shapes the services use."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = async_database_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        self._write_engine = self.engine.execution_options(stampbook_write=True)
        self._write_lock: asyncio.Lock | None = None
        if self.is_sqlite:
            _configure_sqlite(self.engine)
            self._write_lock = asyncio.Lock()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block ends, rolled back on error."""
        lock = self._write_lock or nullcontext()
        async with lock, _translate_unavailable(), self._write_engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (deferred on SQLite, so readers never block writers)."""
        async with _translate_unavailable(), self.engine.connect() as conn:
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
        await self.engine.dispose()


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
        if exc.connection_invalidated:
            raise StampbookError(Code.SERVICE_UNAVAILABLE) from exc
        raise


def _configure_sqlite(engine: AsyncEngine) -> None:
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
        immediate = conn.get_execution_options().get("stampbook_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
