"""The dashboard at scale: the 30-day overview and a customer search on one
large account (issue #14's targets).

One account in Asia/Seoul, 10 cards of 7 stamps, seeded with SQL:
1,000,000 stamps and 10,000,000 ledger rows on PostgreSQL (``generate_series``),
100,000 and 1,000,000 on SQLite (a recursive CTE). The stamps were issued
evenly over the last 730 days; the ledger's rows are spread evenly over the
same days in id order (as a live ledger is), each naming a pseudo-random
stamp (k × 7919 mod stamps), in a repeating pattern of ten: a CREATE, seven
ADDs (the seventh fills a card: a completion), a USE and a REMOVE. A
30-day range therefore holds about 4 % of the ledger (410,000 rows on
PostgreSQL). Stamps hold 0..7 stamps, one in five is redeemed, one in a
thousand switched off; names, phones and emails are distinct per stamp.

Measured in process, through the same service functions the Overview and
Customers pages call (``stats.service.stats`` and ``stamps.search.search``),
each case 3 times to warm up and then 15 times; the table shows the p50 and
the slowest. Targets: the overview under 300 ms, a search under 100 ms.

The statistics' rollups (``stats/rollups.py``): a running server's job keeps
them a few seconds behind the ledger. So each run first empties them (the
watermark back to 0) and times the overview all live, an extra row with no
target; then folds the whole ledger as the job does (``jobs.fold_rollups``,
timed and reported as a note) and measures every case on the folded rollups.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from harness import (
    ACCOUNT_SQL,
    execute,
    fetch_int,
    migrate,
    postgres_database,
    server_env,
    settle,
    stampbook,
)
from stampbook import jobs
from stampbook.db.schema import stamp_event
from stampbook.kit.context import CallContext, zone_for
from stampbook.kit.db import Database
from stampbook.stamps import search
from stampbook.stats import rollup_repository as rollup_repo
from stampbook.stats import service as stats

SIZES = {"postgresql": (1_000_000, 10_000_000), "sqlite": (100_000, 1_000_000)}
CARDS = 10
MAX_STAMPS = 7
SPAN_DAYS = 730
ZONE = "Asia/Seoul"
WARMUP, RUNS = 3, 15
OVERVIEW_TARGET_MS, SEARCH_TARGET_MS = 300.0, 100.0
# BENCH_DASHBOARD_POSTGRESQL_URL / BENCH_DASHBOARD_SQLITE_URL: measure (and
# seed, the first time) a database kept between runs instead of a fresh one.
KEEP_ENV = "BENCH_DASHBOARD_{kind}_URL"
BATCH = 1_000_000  # ledger rows per INSERT, so a long seeding shows progress
FOLD_ROWS = 200_000  # ledger rows per fold transaction while catching up

ACTION = "CASE {k} % 10 WHEN 0 THEN 'CREATE' WHEN 8 THEN 'USE' WHEN 9 THEN 'REMOVE' ELSE 'ADD' END"
BEFORE = "CASE WHEN {k} % 10 BETWEEN 1 AND 7 THEN {k} % 10 - 1 WHEN {k} % 10 = 0 THEN 0 ELSE 7 END"
AFTER = "CASE WHEN {k} % 10 BETWEEN 1 AND 7 THEN {k} % 10 WHEN {k} % 10 = 9 THEN 6 ELSE {v} END"


@dataclass
class Case:
    """One measured call: its name, kind (overview or search) and p50/max (ms)."""

    database: str
    name: str
    kind: str
    p50: float
    slowest: float

    @property
    def target(self) -> float | None:
        """The case's target in ms (none for the all-live overview, shown for comparison)."""
        targets = {"overview": OVERVIEW_TARGET_MS, "search": SEARCH_TARGET_MS}
        return targets.get(self.kind)

    @property
    def met(self) -> bool:
        """True when the p50 is under the target (or the case has none)."""
        return self.target is None or self.p50 < self.target


def _stamps_sql(kind: str, account: int, card0: int, stamps: int, start: str) -> str:
    step = SPAN_DAYS * 86400 / stamps
    if kind == "postgresql":
        source = f"generate_series(1::bigint, {stamps}) AS s(g)"
        pad = "lpad(((g * 7919) % 100000000)::text, 8, '0')"
        moment = f"TIMESTAMP '{start}' + (g * {step}) * INTERVAL '1 second'"
    else:
        source = f"(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {stamps}) SELECT g FROM s)"  # noqa: E501
        pad = "printf('%08d', (g * 7919) % 100000000)"
        moment = (
            f"datetime('{start}', '+' || CAST(g * {step} AS INTEGER) || ' seconds') || '.000000'"
        )
    return (
        "INSERT INTO stamp (account_idx, card_idx, token, stamps, strt_ymd, end_ymd, active_yn,"
        " use_yn, user_id, user_nm, user_phnno, user_eml, max_stamps, reg_ymdt, pin_failures)"
        f" SELECT {account}, {card0} + g % {CARDS}, 'dash-' || g, g % 8, '2020-01-01',"
        " '2099-12-31', CASE WHEN g % 1000 = 0 THEN 'N' ELSE 'Y' END,"
        " CASE WHEN g % 5 = 0 THEN 'Y' ELSE 'N' END, 'U' || g, 'Customer ' || g,"
        f" '010-' || {pad}, 'c' || g || '@example.test', {MAX_STAMPS}, {moment}, 0"
        f" FROM {source}"
    )


def _events_sql(
    kind: str, account: int, card0: int, first: int, stamps: int, rows: int, lo: int, hi: int,
    start: str,
) -> str:  # fmt: skip
    step = SPAN_DAYS * 86400 / rows
    g = f"((k * 7919) % {stamps} + 1)"
    if kind == "postgresql":
        source = f"generate_series({lo}::bigint, {hi - 1}) AS e(k)"
        moment = f"TIMESTAMP '{start}' + (k * {step}) * INTERVAL '1 second'"
    else:
        source = f"(WITH RECURSIVE e(k) AS (SELECT {lo} UNION ALL SELECT k + 1 FROM e WHERE k < {hi - 1}) SELECT k FROM e)"  # noqa: E501
        moment = (
            f"datetime('{start}', '+' || CAST(k * {step} AS INTEGER) || ' seconds') || '.000000'"
        )
    return (
        "INSERT INTO stamp_event (account_idx, stamp_idx, card_idx, action, stamps_before,"
        " stamps_after, source, reg_ymdt)"
        f" SELECT {account}, {first - 1} + {g}, {card0} + {g} % {CARDS},"
        f" {ACTION.format(k='k')}, {BEFORE.format(k='k')}, {AFTER.format(k='k', v=7)},"
        f" 'API', {moment} FROM {source}"
    )


def _set_indexes_aside(url: str) -> list[str]:
    """Drop the stamp and ledger tables' secondary indexes (PostgreSQL); returns
    the statements that build them again, exactly as the migrations made them."""
    definitions = []
    for table in ("stamp", "stamp_event"):
        for name in _index_names(url, table):
            definitions.append(_index_definition(url, name))
            execute(url, f"DROP INDEX {name}")
    return definitions


def _index_names(url: str, table: str) -> list[str]:
    import asyncpg

    async def names() -> list[str]:
        conn = await asyncpg.connect(url.replace("postgresql://", "postgres://"))
        try:
            rows = await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE tablename = $1 AND indexname NOT IN"
                " (SELECT conname FROM pg_constraint)",
                table,
            )
            return [str(row[0]) for row in rows]
        finally:
            await conn.close()

    return asyncio.run(names())


def _index_definition(url: str, name: str) -> str:
    import asyncpg

    async def definition() -> str:
        conn = await asyncpg.connect(url.replace("postgresql://", "postgres://"))
        try:
            return str(
                await conn.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = $1", name)
            )
        finally:
            await conn.close()

    return asyncio.run(definition())


def seed(kind: str, url: str) -> tuple[int, str]:
    """Migrate and seed (once: a kept database is seeded already); returns the
    account and a note of what it took."""
    env = server_env(url, "http://127.0.0.1:1")
    migrate(env)
    with contextlib.suppress(Exception):
        return fetch_int(url, ACCOUNT_SQL.format(name="dashboard")), f"{kind}: kept database"
    stampbook(env, "apikey", "create", "--account", "dashboard")
    account = fetch_int(url, ACCOUNT_SQL.format(name="dashboard"))
    execute(url, f"UPDATE account SET timezone = '{ZONE}' WHERE account_idx = {account}")
    for n in range(CARDS):
        execute(
            url,
            "INSERT INTO card (account_idx, card_nm, max_stamps, onsite_yn, min_interval_sec,"
            f" reg_ymdt) VALUES ({account}, 'Card {n}', {MAX_STAMPS}, 'N', 0, CURRENT_TIMESTAMP)",
        )
    card0 = fetch_int(url, f"SELECT min(card_idx) FROM card WHERE account_idx = {account}")
    stamps, rows = SIZES[kind]
    start = (datetime.now(UTC) - timedelta(days=SPAN_DAYS)).strftime("%Y-%m-%d %H:%M:%S")
    began = time.monotonic()
    rebuild = _set_indexes_aside(url) if kind == "postgresql" else []
    execute(url, _stamps_sql(kind, account, card0, stamps, start))
    first = fetch_int(url, f"SELECT min(stamp_idx) FROM stamp WHERE account_idx = {account}")
    for lo in range(0, rows, BATCH):
        hi = min(rows, lo + BATCH)
        execute(url, _events_sql(kind, account, card0, first, stamps, rows, lo, hi, start))
        print(f"  {kind}: ledger rows {hi:,} of {rows:,}", flush=True)
    for definition in rebuild:  # built once over all the rows: far faster than row by row
        execute(url, definition)
    seeded = time.monotonic() - began
    settle(url)
    if kind == "sqlite":
        execute(url, "ANALYZE")
    note = (
        f"{kind}: {stamps:,} stamps and {rows:,} ledger rows seeded in {seeded:.0f} s,"
        f" settled in {time.monotonic() - began - seeded:.0f} s"
    )
    print(f"  {note}", flush=True)
    return account, note


async def _timed(db: Database, call: Callable[[Any, CallContext], Awaitable[Any]],
                 ctx: Callable[[], CallContext]) -> list[float]:  # fmt: skip
    times = []
    for n in range(WARMUP + RUNS):
        began = time.perf_counter()
        async with db.read() as conn:
            await call(conn, ctx())
        if n >= WARMUP:
            times.append((time.perf_counter() - began) * 1000)
    return times


def _cases(card0: int) -> dict[str, tuple[str, Callable[[Any, CallContext], Awaitable[Any]]]]:
    def overview(card: int | None) -> Callable[[Any, CallContext], Awaitable[Any]]:
        return lambda conn, ctx: stats.stats(conn, ctx, first=None, last=None, card_idx=card)

    def find(**kwargs: Any) -> Callable[[Any, CallContext], Awaitable[Any]]:
        return lambda conn, ctx: search.search(conn, ctx, **kwargs)

    return {
        "overview, 30 days": ("overview", overview(None)),
        "overview, 30 days, one card": ("overview", overview(card0 + 3)),
        "search name 'Customer 4242'": ("search", find(text="Customer 4242")),
        "search phone '010-7712'": ("search", find(text="010-7712")),
        "search email 'c31337@'": ("search", find(text="c31337@")),
        "search 'customer' (every stamp)": ("search", find(text="customer")),
        "search nothing, state complete": ("search", find(state="complete")),
        "search 'u77', one card, active": (
            "search",
            find(text="u77", card_idx=card0 + 7, state="active"),
        ),
    }


async def _unfold(db: Database) -> None:
    """Empty the rollups, watermark 0: the overview reads the ledger all live."""
    async with db.write() as conn:
        await rollup_repo.unfold(conn)


async def _fold(kind: str, db: Database) -> str:
    """Fold the whole ledger as the job does; a note of what it took."""
    began = time.monotonic()
    while True:
        await jobs.fold_rollups(db, rows=FOLD_ROWS)
        async with db.read() as conn:
            highest = (await conn.execute(select(func.max(stamp_event.c.event_idx)))).scalar_one()
            if await rollup_repo.folded_idx(conn) >= (highest or 0):
                break
        await asyncio.sleep(0.5)  # PostgreSQL: rows seen, settled once older transactions end
    took = time.monotonic() - began
    note = f"{kind}: rollups folded (the whole ledger, as the job does) in {took:.0f} s"
    print(f"  {note}", flush=True)
    return note


def _show(case: Case) -> Case:
    target = "no target" if case.target is None else f"target {case.target:.0f}"
    print(f"  {case.database:<10} {case.name:<36} p50 {case.p50:8.1f} ms"
          f"  max {case.slowest:8.1f} ms  ({target})", flush=True)  # fmt: skip
    return case


async def _measure(kind: str, url: str, account: int, card0: int) -> tuple[list[Case], str]:
    db = Database(url, pool_size=2)

    def ctx() -> CallContext:
        return CallContext(account_idx=account, zone=zone_for(ZONE), now=datetime.now(UTC),
                           public_url="http://127.0.0.1")  # fmt: skip

    found = []
    try:
        await _unfold(db)
        _, call = _cases(card0)["overview, 30 days"]
        times = await _timed(db, call, ctx)
        name = "overview, 30 days, all live (no rollup)"
        found.append(_show(Case(kind, name, "live", statistics.median(times), max(times))))
        note = await _fold(kind, db)
        for name, (what, call) in _cases(card0).items():
            times = await _timed(db, call, ctx)
            found.append(_show(Case(kind, name, what, statistics.median(times), max(times))))
    finally:
        await db.dispose()
    return found, note


@contextlib.contextmanager
def _database(kind: str, tmp: Path) -> Iterator[str]:
    kept = os.environ.get(KEEP_ENV.format(kind=kind.upper()))
    if kept:
        yield kept
    elif kind == "postgresql":
        with postgres_database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp / 'dashboard-scale.db'}"


def run(kind: str, tmp: Path) -> tuple[list[Case], list[str]]:
    """Seed one database of ``kind`` and measure the dashboard's calls on it."""
    print(f"{kind}: dashboard at scale (load average {os.getloadavg()[0]:.2f})", flush=True)
    with _database(kind, tmp) as url:
        account, note = seed(kind, url)
        card0 = fetch_int(url, f"SELECT min(card_idx) FROM card WHERE account_idx = {account}")
        load = f"{kind}: load average {os.getloadavg()[0]:.2f} before measuring"
        cases, folded = asyncio.run(_measure(kind, url, account, card0))
    return cases, [note, load, folded]


def print_table(cases: list[Case], notes: list[str]) -> bool:
    """The dashboard table; True when every case met its target."""
    print("\nDashboard at scale (in process, p50 of 15 after 3 warm-up calls)")
    for note in notes:
        print(f"  {note}")
    print(f"  {'database':<10} {'case':<36} {'p50 ms':>8} {'max ms':>8} {'target':>7}")
    for case in cases:
        mark = "ok" if case.met else "MISSED"
        target = "-" if case.target is None else f"{case.target:.0f}"
        if case.target is None:
            mark = "(for comparison)"
        print(f"  {case.database:<10} {case.name:<36} {case.p50:8.1f} {case.slowest:8.1f}"
              f" {target:>7} {mark}")  # fmt: skip
    return all(case.met for case in cases)
