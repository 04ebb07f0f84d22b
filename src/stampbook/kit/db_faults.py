"""What a database failure means for the client, and what the operator is told.

Every error raised by SQLite, asyncpg or SQLAlchemy on its way out of
``Database`` passes through ``translate``: a fault of the database (lost,
frozen, locked, full, not migrated) becomes 503 with 1902, or 1903 for a
schema that is not there, and is logged with its cause; anything else is a
bug and goes on to the 500 handler. The log is rate-limited per cause (one
line per burst, then one per ``LOG_EVERY_SECONDS`` naming how many were left
out), so a database outage under load is a handful of lines, not one per
request. Storage faults (a full disk) are remembered for readiness: a
``SELECT 1`` still answers on a full disk.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from stampbook.kit.errors import Code, StampbookError

log = logging.getLogger("stampbook.db")

LOG_EVERY_SECONDS = 30.0
# A storage fault makes /readyz answer 503 this long after it was seen (or
# until a write succeeds): long enough for a load balancer to notice, short
# enough that a worker taken out of rotation is tried again by itself.
STORAGE_FAULT_MEMORY_SECONDS = 60.0

# PostgreSQL SQLSTATEs (and classes) that mean the database, not the request,
# failed: connection exceptions, operator intervention (shutdown, restart,
# statement timeout), insufficient resources (disk full, too many
# connections), a deadlock or serialisation victim, a read-only standby, a
# lock not available. The request changed nothing and may be sent again.
_UNAVAILABLE_CLASSES = ("08", "53", "57")
_UNAVAILABLE_STATES = frozenset({"40001", "40P01", "25006", "55P03"})
_NOT_MIGRATED_STATES = frozenset({"42P01", "42703"})  # undefined table, column
_STORAGE_STATES = frozenset({"53100"})  # disk full
_SQLITE_STORAGE = frozenset({"SQLITE_FULL", "SQLITE_READONLY", "SQLITE_IOERR"})
# SQLite errors after which the connection itself cannot be trusted.
_SQLITE_LOST = frozenset({"SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_CORRUPT", "SQLITE_NOTADB"})
_CREDENTIALS = re.compile(r"(\w+://[^:/@\s]+):[^@\s]+@")


@dataclass(frozen=True, slots=True)
class Fault:
    """A database failure as the client and the operator see it."""

    code: Code
    cause: str
    lost: bool  # the connection must be dropped, not reused
    storage: bool  # the database cannot store anything (disk full, read-only)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the driver error SQLAlchemy wrapped, and their causes."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 6:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__


def _sqlstate(exc: BaseException) -> str | None:
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return str(code) if code else None


def _describe(exc: BaseException) -> str:
    """Class and first line of the message, credentials in URLs blanked out."""
    text = str(exc).strip().splitlines()
    first = _CREDENTIALS.sub(r"\1:***@", text[0] if text else "")[:200]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def classify(exc: BaseException) -> Fault | None:
    """The fault ``exc`` stands for, or None when it is not the database's fault."""
    fault = _classify(exc)
    if fault is None:
        return None
    # Named by the driver's own error (the one SQLAlchemy or the adapter wrapped),
    # so that one cause reads the same whichever path met it.
    *_, deepest = _chain(exc)
    return Fault(fault.code, _describe(deepest), fault.lost, fault.storage)


def _classify(exc: BaseException) -> Fault | None:
    for link in _chain(exc):
        if isinstance(link, sqlite3.Error):
            name = getattr(link, "sqlite_errorname", "") or ""
            text = str(link)
            if "no such table" in text or "no such column" in text:
                return Fault(Code.DATABASE_NOT_MIGRATED, _describe(link), False, False)
            if isinstance(link, sqlite3.OperationalError) or name in _SQLITE_STORAGE:
                return Fault(
                    Code.SERVICE_UNAVAILABLE,
                    _describe(link),
                    lost=name in _SQLITE_LOST,
                    storage=name in _SQLITE_STORAGE or "disk is full" in text,
                )
            return None
        state = _sqlstate(link)
        if state is not None:
            if state in _NOT_MIGRATED_STATES:
                return Fault(Code.DATABASE_NOT_MIGRATED, _describe(link), False, False)
            if state in _UNAVAILABLE_STATES or state[:2] in _UNAVAILABLE_CLASSES:
                lost = state[:2] == "08" or state in {"57P01", "57P02"}
                return Fault(
                    Code.SERVICE_UNAVAILABLE, _describe(link), lost, state in _STORAGE_STATES
                )
            return None
        if (
            isinstance(
                link,
                OSError
                | TimeoutError
                | asyncpg.InterfaceError
                | asyncpg.InternalClientError
                | asyncpg.PostgresConnectionError,
            )
            or type(link).__name__ == "InterfaceError"
        ):
            return Fault(Code.SERVICE_UNAVAILABLE, _describe(link), True, False)
        if isinstance(link, PoolTimeoutError):
            return Fault(Code.SERVICE_UNAVAILABLE, _describe(link), False, False)
        if isinstance(link, DBAPIError) and link.connection_invalidated:
            return Fault(Code.SERVICE_UNAVAILABLE, _describe(link), True, False)
    if isinstance(exc, OperationalError):
        # SQLAlchemy's own word that the database, not the statement, failed.
        return Fault(Code.SERVICE_UNAVAILABLE, _describe(exc), False, False)
    return None


@dataclass
class _Burst:
    logged_at: float
    suppressed: int = 0


@dataclass
class FaultLog:
    """Logs database faults once per burst per cause; remembers storage faults."""

    bursts: dict[tuple[Code, str], _Burst] = field(default_factory=dict)
    storage_fault: tuple[float, str] | None = None

    def report(self, fault: Fault) -> None:
        """Log ``fault`` unless its cause was logged within ``LOG_EVERY_SECONDS``."""
        now = time.monotonic()
        if fault.storage:
            self.storage_fault = (now, fault.cause)
        # One burst per cause: "not migrated" is one cause however it shows.
        kind = "" if fault.code == Code.DATABASE_NOT_MIGRATED else fault.cause.partition(":")[0]
        key = (fault.code, kind)
        burst = self.bursts.get(key)
        if burst is not None and now - burst.logged_at < LOG_EVERY_SECONDS:
            burst.suppressed += 1
            return
        more = f" ({burst.suppressed} more since the last report)" if burst else ""
        if len(self.bursts) > 100:
            self.bursts.clear()
        self.bursts[key] = _Burst(now)
        if fault.code == Code.DATABASE_NOT_MIGRATED:
            log.error(
                "database not migrated (%s): answering 503/1903; run 'stampbook db upgrade'%s",
                fault.cause,
                more,
            )
        else:
            log.warning("database unavailable (%s): answering 503/1902%s", fault.cause, more)

    def storage_trouble(self) -> str | None:
        """The storage fault seen lately (and not cleared by a write since), if any."""
        if self.storage_fault is None:
            return None
        seen, cause = self.storage_fault
        if time.monotonic() - seen > STORAGE_FAULT_MEMORY_SECONDS:
            self.storage_fault = None
            return None
        return cause


@asynccontextmanager
async def translate(faults: FaultLog) -> AsyncIterator[None]:
    """Turn a database fault into the 1902/1903 envelope (logged) instead of a 500."""
    try:
        yield
    except StampbookError:
        raise
    except Exception as exc:
        fault = classify(exc)
        if fault is None:
            raise
        faults.report(fault)
        raise StampbookError(fault.code) from exc
