"""``/readyz``: whether this worker can serve, within a bound, said plainly.

A load balancer needs one bit (send traffic here or not) and an operator
needs the reason, so the answer is 200 or 503 with a body naming each
dependency's state:

- ``database``: ``ok``; ``unavailable`` (no answer within
  ``STAMPBOOK_READINESS_TIMEOUT_SECONDS``, or an error); ``not migrated``
  (no schema, or a revision other than the code's head); ``storage full``
  (an SQLite file that cannot grow, or a write refused for a full disk in
  the last minute). Anything but ``ok`` is 503: no request could succeed.
- ``redis`` (when configured): ``ok`` or ``degraded``. A degraded Redis is
  still 200 with ``"status": "degraded"``: the worker serves every request,
  only its rate limits are counted per worker meanwhile, and taking every
  worker out of rotation for that would turn a cache outage into a full one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.db.migrate import head_revisions
from stampbook.kit.db import Database
from stampbook.kit.db_faults import translate
from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.ratelimit import RateLimiter

# Below this much free space in its directory an SQLite database is not ready.
SQLITE_MIN_FREE_BYTES = 1 << 20
OK = "ok"


class ReadinessProbe:
    """Answers readiness; one database probe runs at a time.

    A probe stuck on a frozen database is not cancelled (it ends by the
    statement timeout); later checks wait on the same one, within their own
    bound, so readiness checks never pile connections up.
    """

    def __init__(self) -> None:
        self._probe: asyncio.Future[tuple[str, str | None]] | None = None

    async def report(
        self, db: Database, limiter: RateLimiter, *, within: float
    ) -> tuple[int, dict[str, Any]]:
        """The HTTP status and body of ``/readyz``."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(_database_state(db))
        try:
            state, detail = await asyncio.wait_for(asyncio.shield(self._probe), within)
        except TimeoutError:
            state, detail = "unavailable", f"the database did not answer within {within:g} s"
        body: dict[str, Any] = {"status": OK, "database": state, "dialect": db.dialect}
        shared = limiter.shared
        if shared is not None:
            body["redis"] = OK if await shared.healthy() else "degraded"
            if body["redis"] != OK:
                body["status"] = "degraded"
        if state != OK:
            body["status"] = "unavailable"
            body["detail"] = detail
            return 503, body
        return 200, body

    async def close(self) -> None:
        """Stop a probe still under way (at shutdown)."""
        if self._probe is not None and not self._probe.done():
            self._probe.cancel()
            with contextlib.suppress(BaseException):
                await self._probe


async def _database_state(db: Database) -> tuple[str, str | None]:
    """``("ok", None)``, or the database's state and what is wrong."""
    try:
        async with translate(db.faults), db.engine.connect() as conn:
            result = await conn.exec_driver_sql("SELECT version_num FROM alembic_version")
            revisions = {str(row[0]) for row in result}
            full = await _sqlite_full(conn, db.sqlite_path) if db.sqlite_path else None
    except StampbookError as exc:
        if exc.code == Code.DATABASE_NOT_MIGRATED:
            return "not migrated", "no schema: run 'stampbook db upgrade'"
        return "unavailable", "the database does not answer"
    except Exception:
        return "unavailable", "the database does not answer"
    heads = head_revisions()
    if revisions != heads:
        at = ", ".join(sorted(revisions)) or "none"
        wanted = ", ".join(sorted(heads))
        return (
            "not migrated",
            f"at revision {at}, the code needs {wanted}: run 'stampbook db upgrade'",
        )
    trouble = full or db.faults.storage_trouble()
    if trouble:
        return "storage full", trouble
    return OK, None


async def _sqlite_full(conn: AsyncConnection, path: str) -> str | None:
    """Why an SQLite database cannot grow, if it cannot: its page limit reached,
    or too little free space beside it."""
    pages, limit, free = [
        int((await conn.exec_driver_sql(f"PRAGMA {name}")).scalar_one())
        for name in ("page_count", "max_page_count", "freelist_count")
    ]
    if pages - free >= limit:
        return "the database reached its page limit (SQLITE_FULL)"
    if _free_bytes(path) < SQLITE_MIN_FREE_BYTES:
        return "the disk holding the database is full"
    return None


def _free_bytes(path: str) -> int:
    """Free space for unprivileged writers in the directory of ``path`` (one
    system call, no disk access)."""
    stats = os.statvfs(os.path.dirname(os.path.abspath(path)))
    return stats.f_bavail * stats.f_frsize
