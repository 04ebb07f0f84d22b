"""A PostgreSQL restart or freeze under a real server: answered 503, then recovered.

These tests run their own PostgreSQL cluster (``tests/private_services.py``),
since they restart and freeze it; the shared server at 127.0.0.1:5432 is
never touched. The server under test is a real ``stampbook serve`` with short
timeouts, so the bounds below are those settings plus a generous margin.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stampbook.db.migrate import upgrade
from tests.conftest import new_key
from tests.private_services import PrivatePostgres, private_postgres
from tests.servers import RealServer, admin_sql, real_server

pytestmark = pytest.mark.slow

TIMEOUTS = {
    "STAMPBOOK_DB_CONNECT_TIMEOUT_SECONDS": "1",
    "STAMPBOOK_DB_STATEMENT_TIMEOUT_SECONDS": "1",
    "STAMPBOOK_READINESS_TIMEOUT_SECONDS": "2",
}
# Waiting for a pooled connection (1 s), opening one (1 s), the statement
# (1 s, plus the client's 1 s margin) and dropping the dead connection: well
# under this, with room for a loaded machine.
FROZEN_BOUND_SECONDS = 8.0
READY_BOUND_SECONDS = 4.0


class Client:
    """The three general-path calls the outage must not break for long."""

    def __init__(self, server: RealServer, key: str) -> None:
        self.http = httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"APIKey {key}"}, timeout=30
        )
        self.card_idx = self.call("create")[1]

    def call(self, verb: str) -> tuple[int, Any, float]:
        """(envelope code, result, seconds) of list, update or create."""
        started = time.monotonic()
        if verb == "list":
            response = self.http.get("/api/stamp/v1/card/list")
        elif verb == "update":
            response = self.http.put(
                "/api/stamp/v1/card/update", json={"cardIdx": self.card_idx, "cardNm": "Tea"}
            )
        else:
            response = self.http.post(
                "/api/stamp/v1/card/create",
                json={"cardNm": "Coffee", "cardTtl": "10 coffees", "maxStamps": 10},
            )
        body = response.json()
        assert list(body) == ["code", "message", "result"], body
        assert body["code"] in (0, 1902), (verb, response.status_code, body)
        assert response.status_code == (200 if body["code"] == 0 else 503)
        return int(body["code"]), body["result"], time.monotonic() - started


@pytest.fixture
def cluster() -> Iterator[PrivatePostgres]:
    """A private cluster with a migrated database ``stampbook``; always stopped after."""
    with private_postgres() as pg:
        admin_sql(pg.url(), "CREATE DATABASE stampbook")
        upgrade(pg.url("stampbook"))
        yield pg


def attempts_until_ok(client: Client, verb: str, tries: int = 3) -> int:
    """How many calls it took to get code 0 (fails past ``tries``)."""
    for attempt in range(1, tries + 1):
        if client.call(verb)[0] == 0:
            return attempt
    raise AssertionError(f"{verb} still failing after {tries} calls")


def test_after_a_restart_list_update_and_create_recover_within_a_couple_of_calls(
    cluster: PrivatePostgres,
) -> None:
    url = cluster.url("stampbook")
    key, _ = asyncio.run(new_key(url))
    with real_server(url, workers=1, env=TIMEOUTS) as server:
        client = Client(server, key)
        for verb in ("list", "update", "create", "list", "update"):
            assert client.call(verb)[0] == 0  # warm both general pools

        # Calls keep coming while the cluster goes down and comes back up:
        # each is answered 0 or 503/1902 (``Client.call`` checks), never a 500.
        stop = threading.Event()
        during: list[int] = []
        broken: list[BaseException] = []

        def keep_calling() -> None:
            other = Client(server, key)
            while not stop.is_set():
                for verb in ("list", "update", "create"):
                    try:
                        during.append(other.call(verb)[0])
                    except (AssertionError, httpx.HTTPError) as exc:
                        broken.append(exc)

        caller = threading.Thread(target=keep_calling)
        caller.start()
        try:
            time.sleep(0.3)
            cluster.restart()
            time.sleep(0.3)
        finally:
            stop.set()
            caller.join(timeout=60)
        assert during and not broken, broken[:3]

        codes = [client.call(verb)[0] for verb in ("list", "update", "create") * 3]
        # Each pool (key lookups, reads, writes) gives away at most one dead
        # connection: its first failure drops the rest of the pool with it.
        assert codes.count(1902) <= 3, codes
        assert codes[-3:] == [0, 0, 0], codes
        assert "Traceback" not in server.log()


def test_a_frozen_database_is_answered_503_within_the_timeouts_then_recovers(
    cluster: PrivatePostgres,
) -> None:
    url = cluster.url("stampbook")
    key, _ = asyncio.run(new_key(url))
    with real_server(url, workers=1, env=TIMEOUTS) as server:
        client = Client(server, key)
        for verb in ("list", "update", "create"):
            assert client.call(verb)[0] == 0

        cluster.freeze()
        try:
            for verb in ("list", "update", "create", "list"):
                code, _, seconds = client.call(verb)
                assert code == 1902 and seconds < FROZEN_BOUND_SECONDS, (verb, seconds)
            started = time.monotonic()
            ready = client.http.get("/readyz")
            assert time.monotonic() - started < READY_BOUND_SECONDS
            assert ready.status_code == 503
            assert ready.json()["database"] == "unavailable"
        finally:
            cluster.thaw()

        for verb in ("list", "update", "create"):
            assert attempts_until_ok(client, verb) <= 3
        assert client.http.get("/readyz").status_code == 200
        assert "Traceback" not in server.log()
        assert "database unavailable" in server.log()
