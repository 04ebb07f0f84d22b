"""Against a real ``stampbook serve``: big unauthenticated bodies are refused
unread (the server's memory stays flat), an oversized head is 431 and the
worker survives, and slow or silent clients are cut off within the read
timeout while normal requests go on working."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn

from stampbook.config import Settings
from stampbook.kit.connections import connection_options
from tests.conftest import suite_settings
from tests.servers import RealServer, real_server

HUNDRED_MB = 100 * 1024 * 1024
READ_TIMEOUT = 1.0
KEEP_ALIVE = 1


def address(server: RealServer) -> tuple[str, int]:
    host, _, port = server.base_url.removeprefix("http://").rpartition(":")
    return host, int(port)


def rss_bytes(server: RealServer) -> int:
    """Resident memory of the server's whole process group (master and workers)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == server.process.pid:  # the process group id
            status = (stat.parent / "status").read_text()
            kilobytes = next(line for line in status.splitlines() if line.startswith("VmRSS"))
            total += int(kilobytes.split()[1]) * 1024
    return total


def head_of(connection: socket.socket, timeout: float) -> bytes:
    """What the server answered until its blank line (or it closed)."""
    connection.settimeout(timeout)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def big_unauthenticated_put(server: RealServer) -> tuple[bytes, int]:
    """Declare a 100 MB body without a key, read the answer before sending any of
    it, then try to send it all; returns the answer and the bytes the server took."""
    with socket.create_connection(address(server)) as connection:
        connection.sendall(
            b"PUT /api/stamp/v1/add HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % HUNDRED_MB
        )
        answer = head_of(connection, timeout=10)
        sent = 0
        block = b" " * (1024 * 1024)
        try:
            connection.settimeout(10)
            while sent < HUNDRED_MB:
                sent += connection.send(block)
        except OSError:
            pass  # the server closed the connection: the upload is cut short
        return answer, sent


def test_big_unauthenticated_bodies_are_refused_unread(database_url: str) -> None:
    with real_server(database_url, workers=1) as server:
        before = rss_bytes(server)
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda _: big_unauthenticated_put(server), range(6)))
        after = rss_bytes(server)
        for answer, sent in results:
            # The answer came before a byte of the body was sent ...
            assert answer.startswith(b"HTTP/1.1 401"), answer
            assert b"connection: close" in answer.lower()
            # ... and the server stopped taking it long before its end.
            assert sent < HUNDRED_MB / 2
        assert after - before < 50 * 1024 * 1024, (before, after)
        assert httpx.get(server.base_url + "/healthz").status_code == 200


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    """One server with a small head cap and short timeouts, for the connection tests
    (they are about HTTP, not the database: SQLite serves them all)."""
    from stampbook.db.migrate import upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('guarded') / 'stampbook.db'}"
    upgrade(url)
    env = {
        "STAMPBOOK_MAX_HEADER_BYTES": "8192",
        "STAMPBOOK_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
        "STAMPBOOK_KEEP_ALIVE_SECONDS": str(KEEP_ALIVE),
    }
    with real_server(url, workers=1, env=env) as server:
        yield server


def closed_within(connection: socket.socket, seconds: float) -> float:
    """Seconds until the server closed ``connection`` (fails if it stays open)."""
    started = time.monotonic()
    connection.settimeout(seconds)
    try:
        while connection.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open beyond {seconds}s")
    return time.monotonic() - started


def test_an_oversized_head_is_431_and_the_worker_survives(guarded: RealServer) -> None:
    with socket.create_connection(address(guarded)) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 16384)
        assert head_of(connection, timeout=10).startswith(b"HTTP/1.1 431")
    # The worker lives on; a request with headers under the cap is served.
    response = httpx.get(guarded.base_url + "/healthz", headers={"X-Fine": "a" * 4000})
    assert response.status_code == 200
    assert guarded.process.poll() is None


def test_a_client_that_stalls_mid_header_is_cut_off(guarded: RealServer) -> None:
    with socket.create_connection(address(guarded)) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        assert closed_within(connection, READ_TIMEOUT + 10) >= READ_TIMEOUT * 0.5
    assert httpx.get(guarded.base_url + "/healthz").status_code == 200


def test_a_client_that_connects_and_says_nothing_is_cut_off(guarded: RealServer) -> None:
    with socket.create_connection(address(guarded)) as connection:
        closed_within(connection, READ_TIMEOUT + 10)


def test_a_client_that_stalls_mid_body_is_cut_off(guarded: RealServer) -> None:
    with socket.create_connection(address(guarded)) as connection:
        connection.sendall(
            b"PUT /api/stamp/v1/add HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
        )
        # The key is refused at once (401); the connection does not wait for the rest.
        assert head_of(connection, timeout=10).startswith(b"HTTP/1.1 401")
        closed_within(connection, READ_TIMEOUT + 10)


def test_an_idle_kept_alive_connection_is_closed_and_busy_ones_go_on(guarded: RealServer) -> None:
    with httpx.Client(base_url=guarded.base_url) as http:
        # Requests in a row on one connection, each well within the timeouts.
        for _ in range(3):
            assert http.get("/healthz").status_code == 200
    with socket.create_connection(address(guarded)) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert head_of(connection, timeout=10).startswith(b"HTTP/1.1 200")
        closed_within(connection, KEEP_ALIVE + 10)


def test_serve_gives_workers_the_configured_time_to_start(database_url: str) -> None:
    # uvicorn restarts a worker that has not answered its health check in
    # time; its own 5 s restarted every worker of a loaded 2-core machine in a
    # loop while they were still importing.
    settings = suite_settings(database_url, worker_start_seconds=45)
    config = uvicorn.Config("stampbook.app:serve_app", **connection_options(settings))
    assert config.timeout_worker_healthcheck == 45
    assert Settings.model_fields["worker_start_seconds"].default == 60
