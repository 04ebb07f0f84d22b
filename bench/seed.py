"""Seeding the bench databases directly with SQL: fast at any size.

Stamps are inserted in one ``INSERT … SELECT`` over ``generate_series``
(PostgreSQL) or a recursive CTE (SQLite), spread round-robin over a range of
cards that the API created; each stamp gets a ledger consistent with its
count (one ``CREATE`` 0→0, then ``adds`` rows of ``ADD`` k-1→k; its count is
``adds``), so the bench's ledger check still holds. Ledger rows are written in
waves (every stamp's CREATE, then every stamp's first ADD, …), as time would
interleave them, not clustered per stamp. A large seed drops the tables'
plain indexes and builds them again afterwards, and PostgreSQL's per-row
foreign-key triggers are off for it (``session_replication_role``; the seed is
consistent by construction).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg


@dataclass(frozen=True)
class Shape:
    """What to seed into one account."""

    account_idx: int
    first_card: int
    cards: int  # contiguous card ids from first_card
    stamps: int
    adds: int = 0  # ADD ledger rows per stamp (plus one CREATE)
    inactive_oldest: int = 0  # the oldest n stamps have activeYn N
    used_every: int = 0  # every n-th stamp has useYn Y (0: none)
    max_stamps: int = 100

    def user_id(self, i: int) -> str:
        """The userId of the i-th seeded stamp (1-based): two stamps per user."""
        return f"user-{i % max(self.stamps // 2, 1)}"

    def usable(self, i: int) -> bool:
        """Whether the i-th seeded stamp is active and unused (validate accepts it)."""
        return not (i <= self.inactive_oldest or (self.used_every and i % self.used_every == 0))


PG_STAMPS = """
INSERT INTO stamp (account_idx, card_idx, token, stamps, strt_ymd, end_ymd, active_yn, use_yn,
                   user_id, max_stamps, reg_ymdt)
SELECT $1, $2 + (i - 1) % $3, md5($4 || i::text), $5, $6, $7,
       CASE WHEN i <= $8 THEN 'N' ELSE 'Y' END,
       CASE WHEN $9 > 0 AND i % $9 = 0 THEN 'Y' ELSE 'N' END,
       'user-' || (i % $10), $11, $12
FROM generate_series(1, $13) AS i
"""
PG_EVENTS = """
INSERT INTO stamp_event (account_idx, stamp_idx, card_idx, action, stamps_before, stamps_after,
                         source, reg_ymdt)
SELECT s.account_idx, s.stamp_idx, s.card_idx, CASE WHEN k = 0 THEN 'CREATE' ELSE 'ADD' END,
       greatest(k - 1, 0), k, 'API', s.reg_ymdt
FROM generate_series(0, $2) AS k, stamp s
WHERE s.account_idx = $1 AND s.stamp_idx > $3
ORDER BY k, s.stamp_idx
"""
LITE_STAMPS = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :stamps)
INSERT INTO stamp (account_idx, card_idx, token, stamps, strt_ymd, end_ymd, active_yn, use_yn,
                   user_id, max_stamps, reg_ymdt)
SELECT :account, :first_card + (i - 1) % :cards, lower(hex(randomblob(16))), :adds, :strt, :end,
       CASE WHEN i <= :inactive THEN 'N' ELSE 'Y' END,
       CASE WHEN :used > 0 AND i % :used = 0 THEN 'Y' ELSE 'N' END,
       'user-' || (i % :users), :max_stamps, :now
FROM n
"""
LITE_EVENTS = """
WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < :adds)
INSERT INTO stamp_event (account_idx, stamp_idx, card_idx, action, stamps_before, stamps_after,
                         source, reg_ymdt)
SELECT s.account_idx, s.stamp_idx, s.card_idx, CASE WHEN k = 0 THEN 'CREATE' ELSE 'ADD' END,
       max(k - 1, 0), k, 'API', s.reg_ymdt
FROM n, stamp s
WHERE s.account_idx = :account AND s.stamp_idx > :after
ORDER BY k, s.stamp_idx
"""


SPAN_SQL = "SELECT min(stamp_idx), max(stamp_idx) FROM stamp WHERE stamp_idx > ?"


def _checked(first: int, last: int, shape: Shape) -> int:
    if last - first + 1 != shape.stamps:
        raise RuntimeError(f"seeded stamps {first}..{last} are not {shape.stamps} contiguous ids")
    return first


def valid_dates() -> tuple[str, str]:
    """strtYmd and endYmd of every seeded stamp: usable today (UTC) and for a year."""
    strt, end, _ = _dates()
    return strt.isoformat(), end.isoformat()


def _dates() -> tuple[date, date, datetime]:
    today = datetime.now(UTC).date()
    return today - timedelta(days=1), today + timedelta(days=365), datetime.now(UTC)


# Indexes that back no constraint: dropped before a bulk seed and rebuilt after
# (building an index once is far cheaper than a million inserts into it).
PG_INDEXES = """
SELECT indexname, indexdef FROM pg_indexes i
WHERE schemaname = current_schema() AND tablename IN ('stamp', 'stamp_event')
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
"""
LITE_INDEXES = """
SELECT name, sql FROM sqlite_master
WHERE type = 'index' AND tbl_name IN ('stamp', 'stamp_event') AND sql IS NOT NULL
"""
BULK = 50_000  # from this many stamps on, indexes are rebuilt rather than maintained


async def _seed_pg(url: str, shape: Shape) -> int:
    strt, end, now = _dates()
    conn = await asyncpg.connect(url.replace("postgresql://", "postgres://"), timeout=10)
    try:
        async with conn.transaction():
            # The seed is consistent by construction: no per-row foreign-key triggers.
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            indexes = await conn.fetch(PG_INDEXES) if shape.stamps >= BULK else []
            for index in indexes:
                await conn.execute(f'DROP INDEX "{index["indexname"]}"')
            after = int(await conn.fetchval("SELECT coalesce(max(stamp_idx), 0) FROM stamp"))
            await conn.execute(
                PG_STAMPS,
                shape.account_idx,
                shape.first_card,
                shape.cards,
                secrets.token_hex(8),
                shape.adds,
                strt,
                end,
                shape.inactive_oldest,
                shape.used_every,
                max(shape.stamps // 2, 1),
                shape.max_stamps,
                now.replace(tzinfo=None),
                shape.stamps,
            )
            await conn.execute(PG_EVENTS, shape.account_idx, shape.adds, after)
            for index in indexes:
                await conn.execute(index["indexdef"])
            first, last = await conn.fetchrow(SPAN_SQL.replace("?", "$1"), after)
        return _checked(int(first), int(last), shape)
    finally:
        await conn.close()


def _seed_sqlite(path: str, shape: Shape) -> int:
    strt, end, now = _dates()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA busy_timeout=30000")
        db.execute("BEGIN IMMEDIATE")
        indexes = db.execute(LITE_INDEXES).fetchall() if shape.stamps >= BULK else []
        for name, _ in indexes:
            db.execute(f'DROP INDEX "{name}"')
        after = int(db.execute("SELECT coalesce(max(stamp_idx), 0) FROM stamp").fetchone()[0])
        db.execute(
            LITE_STAMPS,
            {
                "stamps": shape.stamps,
                "account": shape.account_idx,
                "first_card": shape.first_card,
                "cards": shape.cards,
                "adds": shape.adds,
                "strt": strt.isoformat(),
                "end": end.isoformat(),
                "inactive": shape.inactive_oldest,
                "used": shape.used_every,
                "users": max(shape.stamps // 2, 1),
                "max_stamps": shape.max_stamps,
                "now": now.strftime("%Y-%m-%d %H:%M:%S.%f"),
            },
        )
        db.execute(LITE_EVENTS, {"adds": shape.adds, "account": shape.account_idx, "after": after})
        for _, sql in indexes:
            db.execute(sql)
        first, last = db.execute(SPAN_SQL, (after,)).fetchone()
        db.execute("COMMIT")
    return _checked(int(first), int(last), shape)


def seed_stamps(database_url: str, shape: Shape) -> int:
    """Insert ``shape.stamps`` stamps and their ledger; returns the first new stampIdx
    (the rest follow contiguously)."""
    if database_url.startswith("sqlite:///"):
        return _seed_sqlite(database_url.removeprefix("sqlite:///"), shape)
    return asyncio.run(_seed_pg(database_url, shape))
