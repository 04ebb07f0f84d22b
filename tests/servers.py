"""A real Stampbook server for tests where concurrency or real HTTP matters.

``real_server(database_url)`` starts ``stampbook serve`` (uvicorn, several
worker processes) on a free port of 127.0.0.1 against the given database,
waits until ``/readyz`` answers, yields a ``RealServer`` and always stops the
process group afterwards, whether the test passed or not. The server's output
goes to a log file; ``RealServer.log()`` returns it so that a test can show it
or check that nothing leaked (e.g. "database is locked").

The environment is rebuilt from scratch for ``STAMPBOOK_*`` variables: a
developer's own settings (a Redis URL, a rate limit) never reach the server
unless the test passes them in ``env``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from stampbook.db.migrate import upgrade

STARTUP_SECONDS = 60.0
STOP_SECONDS = 15.0
STAMPBOOK_BIN = Path(sys.executable).parent / "stampbook"


def admin_sql(postgres_admin_url: str, sql: str) -> None:
    """Run one statement (CREATE or DROP DATABASE) as PostgreSQL's admin."""

    async def run() -> None:
        admin = postgres_admin_url.replace("postgresql://", "postgres://")
        conn = await asyncpg.connect(admin, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@contextlib.contextmanager
def scratch_database(
    kind: str, postgres_admin_url: str, *, revision: str = "head"
) -> Iterator[str]:
    """A freshly migrated database of its own (``sqlite`` or ``postgresql``),
    dropped afterwards: for tests whose writes must not reach the session's
    shared database (e.g. a fuzzer creating webhook endpoints that a later
    dispatcher test would then try to deliver to), or that start from an
    older ``revision`` to test a migration."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="stampbook-scratch-") as directory:
            url = f"sqlite:///{directory}/stampbook.db"
            upgrade(url, revision)
            yield url
        return
    name = f"stampbook_scratch_{os.getpid()}_{secrets.token_hex(4)}"
    admin_sql(postgres_admin_url, f'CREATE DATABASE "{name}"')
    try:
        url = f"{postgres_admin_url.rpartition('/')[0]}/{name}"
        upgrade(url, revision)
        yield url
    finally:
        admin_sql(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class RealServer:
    """A running server: where it listens, and where its output goes."""

    base_url: str
    database_url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def real_server(
    database_url: str,
    *,
    workers: int = 2,
    env: dict[str, str] | None = None,
) -> Iterator[RealServer]:
    """Run ``stampbook serve --workers N`` on a free port for the ``with`` block.

    ``env`` adds or overrides ``STAMPBOOK_*`` settings; by default rate limits
    (per key and per refused key) are off and the webhook dispatcher does not run.
    """
    port = free_port()
    base_env = {
        name: value for name, value in os.environ.items() if not name.startswith("STAMPBOOK_")
    }
    server_env = {
        **base_env,
        "STAMPBOOK_DATABASE_URL": database_url,
        "STAMPBOOK_PUBLIC_URL": "https://stamps.example.test",
        "STAMPBOOK_RATE_LIMIT": "off",
        # Tests that poll with a revoked key would otherwise trip the
        # refused-key budget and read a 429 where they wait for a 401.
        "STAMPBOOK_UNAUTHORIZED_LIMIT": "off",
        "STAMPBOOK_LOG_LEVEL": "warning",
        **(env or {}),
    }
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in finally)
        prefix="stampbook-server-", suffix=".log", delete=False
    )
    log_path = Path(log_file.name)
    process = subprocess.Popen(
        [
            str(STAMPBOOK_BIN),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-dispatcher",
        ],
        env=server_env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        # Its own process group, so that stopping it also stops every worker.
        start_new_session=True,
    )
    server = RealServer(
        base_url=f"http://127.0.0.1:{port}",
        database_url=database_url,
        log_path=log_path,
        process=process,
    )
    try:
        _wait_until_ready(server, workers=workers)
        yield server
    finally:
        _stop(process)
        log_file.close()
        with contextlib.suppress(OSError):
            log_path.unlink()


def _wait_until_ready(server: RealServer, *, workers: int) -> None:
    """Poll /readyz until every worker could have answered, or fail with the log."""
    deadline = time.monotonic() + STARTUP_SECONDS
    ready_answers = 0
    with httpx.Client(base_url=server.base_url, timeout=2.0) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"the server exited at start-up:\n{server.log()}")
            try:
                if http.get("/readyz").status_code == 200:
                    ready_answers += 1
                    # Workers start one by one; a few answers in a row make it
                    # likely that all of them are up (correctness never depends
                    # on it: a connection reaching a starting worker just waits).
                    if ready_answers >= workers * 2:
                        return
                    continue
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"the server did not become ready in {STARTUP_SECONDS}s:\n{server.log()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever is left."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_SECONDS)
    # Workers left behind by a master that died first.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
