"""``make bench`` and ``make bench-quick``: Stampbook against a bare baseline, one table.

Everything the run needs is started here and stopped here, whatever happens:
a fresh PostgreSQL database (created on the local server, dropped after) and a
temporary SQLite file, both migrated with ``stampbook db upgrade``; a key from
``stampbook apikey create``; a card and thousands of stamps created through
the API; one webhook endpoint per account, so that every add really writes an
outbox row; then the servers, each with two uvicorn workers:

- the full Stampbook (``stampbook serve --workers 2 --no-dispatcher``: auth,
  the rate limiter on, an Idempotency-Key on every write, ledger, outbox) on
  PostgreSQL and on SQLite;
- the bare baseline (``bench/bare_app.py``: FastAPI and raw asyncpg, the same
  conditional UPDATE plus one ledger INSERT; validate is one SELECT) on the
  same PostgreSQL database.

``wrk`` (32 connections, two threads) drives each scenario for a warm-up, then
for the measured duration; full and bare runs alternate, so that both see the
same machine. Afterwards the ledger is checked against the stamp counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent
LUA = BENCH / "stamp.lua"
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# Servers reach PostgreSQL through its Unix socket when it has one (the way to
# run both on one machine: a round trip costs the client well under half of
# TCP loopback's CPU); `--tcp` uses 127.0.0.1 like the admin connection.
POSTGRES_SOCKET_DIR = os.environ.get("BENCH_POSTGRES_SOCKET_DIR", "/var/run/postgresql")
WORKERS = 2
CONNECTIONS = 32
WRK_THREADS = 2
MAX_STAMPS = 100
HOT_START = 50
RATE_LIMIT = "10000000/minute"  # on, and far above what one machine can send
# API-key lookups cached per worker for this long (STAMPBOOK_AUTH_CACHE_SECONDS):
# a revoked key keeps working for up to this long. 0 checks every request.
AUTH_CACHE_SECONDS = os.environ.get("BENCH_AUTH_CACHE_SECONDS", "5")

# Connections per worker: Stampbook's defaults (STAMPBOOK_DB_HOT_POOL_SIZE for
# add/remove/validate, STAMPBOOK_DB_POOL_SIZE for everything else); the
# baseline's one pool has STAMPBOOK_DB_POOL_SIZE, to which it does best
# (bench/README.md).
HOT_POOL = int(os.environ.get("STAMPBOOK_DB_HOT_POOL_SIZE", "4"))
POOL = int(os.environ.get("STAMPBOOK_DB_POOL_SIZE", "10"))

# Targets from the issue.
RATIO_TARGET = 0.8
P99_TARGET_MS = 50.0
P99_BARE_FACTOR = 1.5
SQLITE_ADD_TARGET = 1500.0
RSS_TARGET_MB = 150.0


@dataclass(frozen=True)
class Profile:
    """How long and how big a run is."""

    name: str
    warmup: int
    rounds: int  # measured rounds per scenario; full and bare take turns
    duration: int  # seconds per round
    stamps: int
    hot: bool
    sqlite_validate: bool


FULL = Profile("full", warmup=5, rounds=4, duration=5, stamps=4000, hot=True, sqlite_validate=True)
QUICK = Profile(
    "quick", warmup=1, rounds=2, duration=3, stamps=2000, hot=False, sqlite_validate=False
)
PERCENTILES = [*range(1, 100), 99.5, 99.9, 100.0]  # the points stamp.lua prints


@dataclass
class Result:
    """One wrk run."""

    scenario: str
    database: str
    server: str
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    refusals: int
    # The worst machine stall of each measured round that had one (see StallProbe).
    stalls_ms: list[float] = field(default_factory=list)


@dataclass
class Seeded:
    """What a server needs to be driven: its key and its stamps."""

    key: str
    account_idx: int
    first: int
    count: int
    hot: int


@dataclass
class Report:
    """Everything the closing table prints."""

    results: list[Result] = field(default_factory=list)
    rss_mb: dict[str, list[float]] = field(default_factory=dict)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    transport: str = ""


# --- processes ------------------------------------------------------------------------


class Server:
    """A server process group, stopped on exit whatever happens."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=ROOT,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log_file.close()

    def workers(self) -> list[int]:
        """The pids of the uvicorn worker processes (children running a spawned worker)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid and b"spawn_main" in cmdline:
                found.append(int(entry.name))
        return sorted(found)

    def worker_rss_mb(self) -> list[float]:
        sizes = []
        for pid in self.workers():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        sizes.append(int(line.split()[1]) / 1024)
        return sizes


class Processes:
    """Every server this run started; ``stop_all`` runs on exit and on signals."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.servers: list[Server] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Server:
        server = Server(name, argv, env, self.logs / f"{name}.log")
        self.servers.append(server)
        return server

    def stop(self, server: Server) -> None:
        server.stop()
        self.servers.remove(server)

    def stop_all(self) -> None:
        for server in list(self.servers):
            self.stop(server)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(server: Server, base: str, path: str, timeout: float = 60.0) -> None:
    """Wait until the server answers ``path`` (any HTTP status counts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited; see {server.log}")
        try:
            httpx.get(base + path, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{server.name} did not start within {timeout:.0f} s; see {server.log}")


def stampbook(env: dict[str, str], *args: str) -> str:
    """Run the ``stampbook`` CLI; returns its stdout."""
    done = subprocess.run(
        [str(BIN / "stampbook"), *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"stampbook {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


# --- databases ------------------------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    name = f"stampbook_bench_{secrets.token_hex(4)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(POSTGRES_ADMIN_URL, name)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def via_socket(url: str) -> str:
    """``url`` (postgresql://user@host:port/db) through the local Unix socket."""
    scheme, rest = url.split("://", 1)
    credentials = rest.split("@", 1)[0] + "@" if "@" in rest else ""
    name = rest.rsplit("/", 1)[1]
    return f"{scheme}://{credentials}/{name}?host={POSTGRES_SOCKET_DIR}"


def server_env(database_url: str, public_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAMPBOOK_")}
    env.update(
        STAMPBOOK_DATABASE_URL=database_url,
        STAMPBOOK_PUBLIC_URL=public_url,
        STAMPBOOK_RATE_LIMIT=RATE_LIMIT,
        STAMPBOOK_LOG_LEVEL="warning",
        STAMPBOOK_DISPATCHER_ENABLED="false",
        STAMPBOOK_AUTH_CACHE_SECONDS=AUTH_CACHE_SECONDS,
        STAMPBOOK_DB_POOL_SIZE=str(POOL),
        STAMPBOOK_DB_HOT_POOL_SIZE=str(HOT_POOL),
    )
    return env


def prepare(env: dict[str, str]) -> str:
    """Migrate, create the account's key; returns the key."""
    stampbook(env, "db", "upgrade")
    return stampbook(env, "apikey", "create", "--account", "bench").strip().splitlines()[-1]


async def _seed(base: str, key: str, stamps: int) -> tuple[int, int, int]:
    """A card with the largest maximum, ``stamps`` stamps and a hot stamp at HOT_START."""
    headers = {"Authorization": f"APIKey {key}"}
    today = datetime.now(UTC).date()
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:

        async def call(method: str, path: str, body: dict[str, Any]) -> Any:
            response = await client.request(method, path, json=body)
            envelope = response.json()
            if envelope["code"] != 0:
                raise RuntimeError(f"{method} {path} {body}: {envelope}")
            return envelope["result"]

        card = await call(
            "POST", "/api/stamp/v1/card/create", {"cardNm": "Bench", "maxStamps": MAX_STAMPS}
        )
        body = {
            "cardIdx": card,
            "strtYmd": (today - timedelta(days=1)).isoformat(),
            "endYmd": (today + timedelta(days=365)).isoformat(),
        }
        gate = asyncio.Semaphore(16)

        async def create() -> int:
            async with gate:
                return int(await call("POST", "/api/stamp/v1/create", body))

        created = sorted(await asyncio.gather(*(create() for _ in range(stamps))))
        if created[-1] - created[0] + 1 != len(created):
            raise RuntimeError("seeded stamps are not one contiguous range")
        hot = await call("POST", "/api/stamp/v1/create", body)
        await call("PUT", "/api/stamp/v1/update", {"stampIdx": hot, "stamps": HOT_START})
        return created[0], len(created), int(hot)


def seed(base: str, key: str, stamps: int) -> tuple[int, int, int]:
    return asyncio.run(_seed(base, key, stamps))


WEBHOOK_SQL = (
    "INSERT INTO webhook_endpoint (account_idx, url, card_idx, events, secret, active_yn,"
    " reg_ymdt) VALUES ({account}, 'http://127.0.0.1:9/bench', NULL, NULL,"
    " 'whsec_YmVuY2hiZW5jaGJlbmNoYmVuY2hiZW5jaA==', 'Y', CURRENT_TIMESTAMP)"
)
ACCOUNT_SQL = "SELECT account_idx FROM account WHERE name = 'bench'"
CHECK_SQL = {
    "ledger": """
        SELECT count(*) FROM stamp s
        LEFT JOIN (SELECT stamp_idx, SUM(stamps_after - stamps_before) AS delta
                   FROM stamp_event GROUP BY stamp_idx) e ON e.stamp_idx = s.stamp_idx
        WHERE s.stamps <> COALESCE(e.delta, 0)""",
    "bounds": """
        SELECT count(*) FROM stamp s JOIN card c ON c.card_idx = s.card_idx
        WHERE s.stamps > c.max_stamps OR s.stamps < 0""",
    "keys": """
        SELECT count(*) FROM (SELECT account_idx, idempotency_key FROM stamp_event
                              WHERE idempotency_key IS NOT NULL
                              GROUP BY account_idx, idempotency_key HAVING count(*) > 1) twice""",
    "outbox": """
        SELECT (SELECT count(*) FROM stamp_event WHERE action = 'ADD' AND key_idx IS NOT NULL)
             - (SELECT count(*) FROM webhook_message WHERE event_type = 'stamp.added')""",
    "events": "SELECT count(*) FROM stamp_event WHERE action = 'ADD'",
}


async def _pg_fetch(url: str, sql: str) -> int:
    conn = await asyncpg.connect(url.replace("postgresql://", "postgres://"), timeout=10)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


def fetch_int(database_url: str, sql: str) -> int:
    """One integer from the bench database (either kind)."""
    if database_url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as db:
            return int(db.execute(sql).fetchone()[0])
    return asyncio.run(_pg_fetch(database_url, sql))


def execute(database_url: str, sql: str) -> None:
    if database_url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as db:
            db.execute(sql)
            db.commit()
        return

    async def run() -> None:
        conn = await asyncpg.connect(database_url.replace("postgresql://", "postgres://"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def settle(database_url: str) -> None:
    """Let the previous scenario's aftermath (dead rows of the stamps it
    updated, dirty pages, WAL) be dealt with before the next one is measured:
    otherwise autovacuum or a checkpoint starts in its first round, and only
    the target measured first pays for it."""
    if database_url.startswith("sqlite:///"):
        execute(database_url, "PRAGMA wal_checkpoint(TRUNCATE)")
        return
    execute(database_url, "VACUUM ANALYZE")
    execute(database_url, "CHECKPOINT")


def check_ledger(database: str, database_url: str, report: Report) -> None:
    """After the load: counts equal the ledger, no stamp beyond its maximum, and so on."""
    ledger = fetch_int(database_url, CHECK_SQL["ledger"])
    bounds = fetch_int(database_url, CHECK_SQL["bounds"])
    keys = fetch_int(database_url, CHECK_SQL["keys"])
    outbox = fetch_int(database_url, CHECK_SQL["outbox"])
    events = fetch_int(database_url, CHECK_SQL["events"])
    report.checks += [
        (
            f"{database}: every stamp count equals its ledger sum ({events} adds)",
            ledger == 0,
            f"{ledger} stamps differ",
        ),
        (
            f"{database}: no stamp above its maximum or below zero",
            bounds == 0,
            f"{bounds} stamps out of range",
        ),
        (f"{database}: no Idempotency-Key in the ledger twice", keys == 0, f"{keys} keys twice"),
        (
            f"{database}: one stamp.added outbox message per API add",
            outbox == 0,
            f"off by {outbox}",
        ),
    ]


# --- load ------------------------------------------------------------------------------

# A round during which a thread that only sleeps 5 ms at a time woke this much
# late was measured while the whole machine stalled (seen here: about 100 ms,
# in every process at once). Such a stall lands on whichever server is being
# measured and can decide its p99, so the table reports the rounds that had one.
STALL_MS = 50.0


class StallProbe:
    """A thread that sleeps 5 ms at a time and keeps the worst lateness."""

    def __init__(self) -> None:
        self.worst_ms = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StallProbe:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            time.sleep(0.005)
            late = (time.perf_counter() - started) * 1000 - 5
            self.worst_ms = max(self.worst_ms, late)


def wrk(base: str, seconds: int, env: dict[str, str]) -> dict[str, Any]:
    argv = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        base,
    ]
    done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True)
    match = re.search(r"^BENCH_RESULT (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed:\n{done.stdout}\n{done.stderr}")
    parsed: dict[str, Any] = json.loads(match.group(1))
    return parsed


def merged_percentile(rounds: list[dict[str, Any]], q: float) -> float:
    """The q-th percentile (us) of several rounds' latencies taken together.

    Each round's distribution is known at PERCENTILES; the mixture's quantile is
    the latency at which the rounds' request-weighted fractions below sum to q.
    """
    total = sum(r["requests"] for r in rounds)

    def below(value: float) -> float:
        count = 0.0
        for r in rounds:
            points = r["percentiles_us"]
            fraction = 0.0
            for pct, latency in zip(PERCENTILES, points, strict=True):
                if latency <= value:
                    fraction = pct / 100
            count += fraction * r["requests"]
        return count

    candidates = sorted({v for r in rounds for v in r["percentiles_us"]})
    for value in candidates:
        if below(value) >= q / 100 * total:
            return float(value)
    return float(candidates[-1])


def measure(
    profile: Profile,
    targets: list[tuple[str, str]],
    seeded: Seeded,
    *,
    scenario: str,
    mode: str,
    database: str,
    database_url: str,
) -> list[Result]:
    """Settle the database, warm up every target, then measure them in
    alternating rounds.

    The machine is shared (other work may start at any moment), so full and
    bare take turns, in alternating order, and each sees the same conditions.
    """
    settle(database_url)
    env = {
        "BENCH_MODE": mode,
        "BENCH_KEY": seeded.key,
        "BENCH_FIRST": str(seeded.first),
        "BENCH_COUNT": str(seeded.count),
        "BENCH_HOT": str(seeded.hot),
        "BENCH_SEED": str(secrets.randbelow(1_000_000)),
    }
    for _, base in targets:
        wrk(base, profile.warmup, {**env, "BENCH_RUN": f"w{secrets.token_hex(6)}"})
    outputs: dict[str, list[dict[str, Any]]] = {server: [] for server, _ in targets}
    stalls: dict[str, list[float]] = {server: [] for server, _ in targets}
    for round_no in range(profile.rounds):
        order = targets if round_no % 2 == 0 else targets[::-1]
        for server, base in order:
            run = {**env, "BENCH_RUN": f"m{secrets.token_hex(6)}"}
            with StallProbe() as probe:
                outputs[server].append(wrk(base, profile.duration, run))
            if probe.worst_ms >= STALL_MS:
                stalls[server].append(probe.worst_ms)
    results = []
    for server, _ in targets:
        rounds = outputs[server]
        requests = sum(r["requests"] for r in rounds)
        result = Result(
            scenario=scenario,
            database=database,
            server=server,
            requests=requests,
            rps=requests / (sum(r["duration_us"] for r in rounds) / 1e6),
            p50_ms=merged_percentile(rounds, 50) / 1000,
            p99_ms=merged_percentile(rounds, 99) / 1000,
            errors=sum(r["socket_errors"] + r["non_2xx"] for r in rounds),
            refusals=sum(r["refusals"] for r in rounds),
            stalls_ms=stalls[server],
        )
        print(
            f"  {server:<9} {database:<10} {scenario:<14} {result.rps:8.0f} req/s"
            f"  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
            f"  errors {result.errors}  refusals {result.refusals}",
            flush=True,
        )
        results.append(result)
    return results


# --- the run ----------------------------------------------------------------------------


def full_server(
    procs: Processes, name: str, database_url: str
) -> tuple[Server, str, dict[str, str]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = server_env(database_url, base)
    argv = [str(BIN / "stampbook"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(WORKERS), "--no-dispatcher"]
    server = procs.start(name, argv, env)
    wait_ready(server, base, "/healthz")
    return server, base, env


def bare_server(procs: Processes, database_url: str, account_idx: int) -> tuple[Server, str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "BARE_DATABASE_URL": database_url.replace("postgresql://", "postgres://"),
        "BARE_ACCOUNT_IDX": str(account_idx),
        "BARE_POOL_SIZE": str(POOL),
    }
    argv = [str(BIN / "uvicorn"), "bare_app:app", "--app-dir", str(BENCH)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)]
    argv += ["--loop", "auto", "--http", "auto", "--no-access-log", "--log-level", "warning"]
    server = procs.start("bare-postgresql", argv, env)
    wait_ready(server, base, "/openapi.json")
    return server, base


def setup_database(
    procs: Processes, name: str, database_url: str, profile: Profile
) -> tuple[Server, str, Seeded]:
    env = server_env(database_url, "http://127.0.0.1")
    key = prepare(env)
    account_idx = fetch_int(database_url, ACCOUNT_SQL)
    execute(database_url, WEBHOOK_SQL.format(account=account_idx))
    server, base, _ = full_server(procs, f"stampbook-{name}", database_url)
    first, count, hot = seed(base, key, profile.stamps)
    return server, base, Seeded(key, account_idx, first, count, hot)


def run_postgresql(procs: Processes, profile: Profile, report: Report, *, tcp: bool) -> None:
    with postgres_database() as admin_url:
        url = admin_url if tcp else via_socket(admin_url)
        report.transport = url.split("@", 1)[1]
        print(f"PostgreSQL: {report.transport}", flush=True)
        try:
            full, full_base, seeded = setup_database(procs, "postgresql", url, profile)
            bare, bare_base = bare_server(procs, url, seeded.account_idx)
            scenarios = [("add", "add"), ("validate", "validate")]
            if profile.hot:
                scenarios.append(("hot add/remove", "hot"))
            targets = [("stampbook", full_base), ("bare", bare_base)]
            for scenario, mode in scenarios:
                report.results += measure(
                    profile,
                    targets,
                    seeded,
                    scenario=scenario,
                    mode=mode,
                    database="postgresql",
                    database_url=admin_url,
                )
            report.rss_mb["stampbook-postgresql"] = full.worker_rss_mb()
            report.rss_mb["bare-postgresql"] = bare.worker_rss_mb()
        finally:
            # Stopped before the database is dropped, whatever happened.
            procs.stop_all()
        check_ledger("postgresql", admin_url, report)


def run_sqlite(procs: Processes, profile: Profile, report: Report, tmp: Path) -> None:
    url = f"sqlite:///{tmp / 'bench.db'}"
    print(f"SQLite: {url}", flush=True)
    full, base, seeded = setup_database(procs, "sqlite", url, profile)
    scenarios = [("add", "add")]
    if profile.sqlite_validate:
        scenarios.append(("validate", "validate"))
    if profile.hot:
        scenarios.append(("hot add/remove", "hot"))
    for scenario, mode in scenarios:
        report.results += measure(
            profile,
            [("stampbook", base)],
            seeded,
            scenario=scenario,
            mode=mode,
            database="sqlite",
            database_url=url,
        )
    report.rss_mb["stampbook-sqlite"] = full.worker_rss_mb()
    procs.stop(full)
    check_ledger("sqlite", url, report)


# --- the table ----------------------------------------------------------------------------


def _find(report: Report, scenario: str, database: str, server: str) -> Result | None:
    for result in report.results:
        if (result.scenario, result.database, result.server) == (scenario, database, server):
            return result
    return None


def print_table(report: Report, profile: Profile) -> bool:
    """The closing table, the targets and the checks; True when the checks passed."""
    print()
    print(
        f"Stampbook bench ({profile.name}: {CONNECTIONS} connections, {WORKERS} workers, "
        f"{profile.warmup} s warm-up, {profile.rounds} x {profile.duration} s measured "
        f"alternating with the baseline, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.2f}, auth cache {AUTH_CACHE_SECONDS} s, "
        f"pools per worker: Stampbook {HOT_POOL} hot + {POOL} general, bare {POOL})"
    )
    header = (
        f"| {'scenario':<14} | {'database':<10} | {'server':<9} | {'req/s':>7} | "
        f"{'p50 ms':>6} | {'p99 ms':>6} | {'errors':>6} | {'refused':>7} | {'full/bare':>9} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for r in report.results:
        shown_ratio = ""
        if r.server == "stampbook":
            bare = _find(report, r.scenario, r.database, "bare")
            if bare and bare.rps:
                shown_ratio = f"{r.rps / bare.rps:.2f}"
        print(
            f"| {r.scenario:<14} | {r.database:<10} | {r.server:<9} | {r.rps:7.0f} | "
            f"{r.p50_ms:6.2f} | {r.p99_ms:6.2f} | {r.errors:6d} | {r.refusals:7d} | "
            f"{shown_ratio:>9} |"
        )
    print(f"PostgreSQL reached at {report.transport or 'n/a'} by both servers.")
    stalled = "; ".join(
        f"{r.server} {r.database} {r.scenario}: {len(r.stalls_ms)} round(s), worst "
        f"{max(r.stalls_ms):.0f} ms"
        for r in report.results
        if r.stalls_ms
    )
    print(f"Measured rounds during which the machine stalled (>= {STALL_MS:.0f} ms): ", end="")
    print(f"{stalled or 'none'}.")
    print()
    print("Resident memory per worker after the run:")
    for name, sizes in report.rss_mb.items():
        shown = ", ".join(f"{size:.0f} MB" for size in sizes) or "n/a"
        print(f"  {name:<22} {shown}")
    print()
    print("Targets:")
    targets: list[tuple[str, bool]] = []
    for scenario in ("add", "validate"):
        full = _find(report, scenario, "postgresql", "stampbook")
        bare = _find(report, scenario, "postgresql", "bare")
        if full and bare:
            ratio = full.rps / bare.rps
            targets.append(
                (f"{scenario}: full/bare {ratio:.2f} >= {RATIO_TARGET}", ratio >= RATIO_TARGET)
            )
            bound = max(P99_TARGET_MS, P99_BARE_FACTOR * bare.p99_ms)
            targets.append(
                (
                    f"{scenario}: p99 {full.p99_ms:.1f} ms < {bound:.1f} ms "
                    f"(50 ms, or 1.5 x bare p99 {bare.p99_ms:.1f} ms)",
                    full.p99_ms < bound,
                )
            )
    sqlite_add = _find(report, "add", "sqlite", "stampbook")
    if sqlite_add:
        targets.append(
            (
                f"sqlite add: {sqlite_add.rps:.0f} req/s >= {SQLITE_ADD_TARGET:.0f}",
                sqlite_add.rps >= SQLITE_ADD_TARGET,
            )
        )
    for name, sizes in report.rss_mb.items():
        if name.startswith("stampbook") and sizes:
            targets.append(
                (
                    f"{name}: RSS {max(sizes):.0f} MB < {RSS_TARGET_MB:.0f} MB per worker",
                    max(sizes) < RSS_TARGET_MB,
                )
            )
    errors = sum(r.errors for r in report.results)
    targets.append((f"no errors under load ({errors})", errors == 0))
    for text, met in targets:
        print(f"  [{'met' if met else 'MISSED'}] {text}")
    print()
    print("Correctness after the load:")
    passed = True
    for text, ok, detail in report.checks:
        print(f"  {'PASS' if ok else 'FAIL'} {text}" + ("" if ok else f": {detail}"))
        passed = passed and ok
    print("PASS" if passed else "FAIL")
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the short regression run")
    parser.add_argument("--only", choices=("postgresql", "sqlite"), help="one database only")
    parser.add_argument(
        "--tcp", action="store_true", help="servers reach PostgreSQL over TCP, not its socket"
    )
    args = parser.parse_args()
    profile = QUICK if args.quick else FULL
    if shutil.which("wrk") is None:
        print("wrk is required (apt-get install wrk, or `make bench` installs it)", file=sys.stderr)
        return 2
    print(f"load average before the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    report = Report()
    with tempfile.TemporaryDirectory(prefix="stampbook-bench-") as tmp:
        procs = Processes(Path(tmp))

        def on_signal(signum: int, _frame: Any) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, on_signal)
        try:
            if args.only in (None, "postgresql"):
                tcp = args.tcp or not Path(POSTGRES_SOCKET_DIR, ".s.PGSQL.5432").exists()
                run_postgresql(procs, profile, report, tcp=tcp)
            if args.only in (None, "sqlite"):
                run_sqlite(procs, profile, report, Path(tmp))
        except BaseException:
            for server in procs.servers:
                with contextlib.suppress(OSError):
                    tail = server.log.read_text(errors="replace")[-2000:]
                    print(f"--- {server.name} log (tail) ---\n{tail}", file=sys.stderr)
            raise
        finally:
            procs.stop_all()
    return 0 if print_table(report, profile) else 1


if __name__ == "__main__":
    sys.exit(main())
