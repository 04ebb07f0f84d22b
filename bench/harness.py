"""What ``bench/run.py`` and ``bench/scale.py`` share: processes, databases, wrk.

Every process the bench starts is a :class:`Server` in a :class:`Processes`,
stopped whatever happens; every database is created here and dropped here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
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
# Only for the extra rows (never a target): PostgreSQL through its Unix socket.
POSTGRES_SOCKET_DIR = os.environ.get("BENCH_POSTGRES_SOCKET_DIR", "/var/run/postgresql")
WORKERS = 2
CONNECTIONS = 32
WRK_THREADS = 2
RATE_LIMIT = "10000000/minute"  # on, and far above what one machine can send
# `stampbook db upgrade` goes to this revision (run.py --revision): measuring a
# migration's effect means running the same bench before and after it.
MIGRATION = {"revision": "head"}
PERCENTILES = [*range(1, 100), 99.5, 99.9, 100.0]  # the points stamp.lua prints


@dataclass(frozen=True)
class Profile:
    """How long and how big a run is."""

    name: str
    warmup: int
    rounds: int  # measured rounds per scenario; the servers take turns
    duration: int  # seconds per round
    stamps: int
    hot: bool


@dataclass
class Result:
    """One server's rounds of one scenario, merged."""

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
        self.started: list[Server] = []  # every server ever started, for their logs

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Server:
        server = Server(name, argv, env, self.logs / f"{name}.log")
        self.servers.append(server)
        self.started.append(server)
        return server

    def stop(self, server: Server) -> None:
        server.stop()
        self.servers.remove(server)

    def stop_all(self) -> None:
        for server in list(self.servers):
            self.stop(server)

    def stop_all_but(self, name: str) -> None:
        for server in list(self.servers):
            if server.name != name:
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


def migrate(env: dict[str, str]) -> None:
    """``stampbook db upgrade`` to the bench's revision (head unless --revision)."""
    stampbook(env, "db", "upgrade", MIGRATION["revision"])


def stampbook(env: dict[str, str], *args: str) -> str:
    """Run the ``stampbook`` CLI; returns its stdout."""
    done = subprocess.run(
        [str(BIN / "stampbook"), *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"stampbook {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


WEBHOOK_SQL = (
    "INSERT INTO webhook_endpoint (account_idx, url, card_idx, events, secret, active_yn,"
    " reg_ymdt) VALUES ({account}, '{url}', NULL, NULL,"
    " 'whsec_YmVuY2hiZW5jaGJlbmNoYmVuY2hiZW5jaA==', 'Y', CURRENT_TIMESTAMP)"
)
ACCOUNT_SQL = "SELECT account_idx FROM account WHERE name = '{name}'"


def server_env(database_url: str, public_url: str, **extra: str) -> dict[str, str]:
    """Stampbook's environment: the defaults, but for what the bench must set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAMPBOOK_")}
    env.update(
        STAMPBOOK_DATABASE_URL=database_url,
        STAMPBOOK_PUBLIC_URL=public_url,
        STAMPBOOK_RATE_LIMIT=RATE_LIMIT,
        # The dispatcher (on by default) delivers to the bench's loopback sink;
        # without this it would refuse a private address.
        STAMPBOOK_WEBHOOK_ALLOW_PRIVATE="true",
    )
    env.update(extra)
    return env


def start_sink(procs: Processes) -> str:
    """The loopback webhook receiver; returns its URL."""
    port = free_port()
    argv = [str(BIN / "uvicorn"), "sink:app", "--app-dir", str(BENCH), "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
    server = procs.start("webhook-sink", argv, dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    wait_ready(server, base, "/count")
    return base


def sink_count(base: str) -> int:
    with contextlib.suppress(httpx.HTTPError, ValueError):
        return int(httpx.get(base + "/count", timeout=5).text)
    return -1


def full_server(
    procs: Processes,
    name: str,
    database_url: str,
    public_url: str,
    *,
    wait: bool = True,
    extra: dict[str, str] | None = None,
) -> Server:
    """``stampbook serve --workers 2`` on ``public_url``; its access log goes to its log file."""
    port = int(public_url.rsplit(":", 1)[1])
    argv = [str(BIN / "stampbook"), "serve", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", str(WORKERS)]
    server = procs.start(name, argv, server_env(database_url, public_url, **(extra or {})))
    if wait:
        wait_ready(server, public_url, "/healthz")
    return server


def bare_server(
    procs: Processes,
    name: str,
    database_url: str,
    account_idx: int,
    public_url: str,
    *,
    wait: bool = True,
) -> tuple[Server, str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "BARE_DATABASE_URL": database_url.replace("postgresql://", "postgres://"),
        "BARE_ACCOUNT_IDX": str(account_idx),
        "BARE_POOL_SIZE": "10",
        "BARE_PUBLIC_URL": public_url,
    }
    argv = [str(BIN / "uvicorn"), "bare_app:app", "--app-dir", str(BENCH)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)]
    argv += ["--loop", "auto", "--http", "auto", "--no-access-log", "--log-level", "warning"]
    # As `stampbook serve` gives its workers (STAMPBOOK_WORKER_START_SECONDS).
    argv += ["--timeout-worker-healthcheck", "60"]
    server = procs.start(name, argv, env)
    if wait:
        wait_ready(server, base, "/openapi.json")
    return server, base


def api_call(base: str, key: str, method: str, path: str, body: dict[str, Any]) -> Any:
    response = httpx.request(
        method, base + path, json=body, headers={"Authorization": f"APIKey {key}"}, timeout=30
    )
    envelope = response.json()
    if envelope["code"] != 0:
        raise RuntimeError(f"{method} {path} {body}: {envelope}")
    return envelope["result"]


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
