"""The statistics get room to hash and sort in memory on PostgreSQL
(``work_mem``), and the pooled connection gets its default back after."""

from __future__ import annotations

from sqlalchemy import text

from stampbook.kit.db import Database
from stampbook.stats import repository as repo


async def test_work_mem_is_raised_for_the_stats_statements_only(database_url: str) -> None:
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn, repo.roomy_sorts(conn):
            if conn.dialect.name != "postgresql":
                return  # SQLite: nothing to set, and no error
            inside = (await conn.execute(text("SHOW work_mem"))).scalar_one()
            assert inside == repo.STATS_WORK_MEM
        async with database.read() as conn:  # the one pooled connection, handed on
            after = (await conn.execute(text("SHOW work_mem"))).scalar_one()
            assert after != repo.STATS_WORK_MEM
    finally:
        await database.dispose()
