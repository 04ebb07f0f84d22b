"""Two ``stampbook worker`` processes on PostgreSQL; one is killed (SIGKILL) in the
middle of a batch. Nothing is lost: every message arrives at least once, a
repeat carries the same ``webhook-id`` and body, and each stamp's events still
arrive in order."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from stampbook.app import create_app
from stampbook.config import Settings
from stampbook.db.schema import webhook_message
from stampbook.kit.clock import Clock
from stampbook.kit.db import Database
from tests.conftest import Api, new_key
from tests.webhooks.conftest import Answer, Hooks, Receiver

pytestmark = pytest.mark.slow

STAMPBOOK = Path(sys.executable).with_name("stampbook")
STAMPS = 12
ADDS_PER_STAMP = 3
LEASE_SECONDS = 2


@pytest.fixture
async def pg_app(postgresql_url: str) -> AsyncIterator[FastAPI]:
    """The app on the session's PostgreSQL database, with the real clock."""
    settings = Settings(
        database_url=postgresql_url,
        public_url="https://stamps.example.test",
        rate_limit="off",
        webhook_allow_private=True,
        dispatcher_enabled=False,
    )
    application = create_app(settings, clock=Clock())
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def workers(postgresql_url: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    """A place to start worker processes; every one is killed and reaped afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def start_worker(postgresql_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STAMPBOOK_DATABASE_URL": postgresql_url,
        "STAMPBOOK_WEBHOOK_ALLOW_PRIVATE": "true",
        "STAMPBOOK_WEBHOOK_TIMEOUT_SECONDS": "1",
        "STAMPBOOK_LOG_LEVEL": "warning",
    }
    return subprocess.Popen(
        [
            str(STAMPBOOK),
            "worker",
            "--batch-size",
            "4",
            "--poll-seconds",
            "0.1",
            "--lease-seconds",
            str(LEASE_SECONDS),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def leased_by(database: Database, pid: int) -> list[str]:
    """The msg ids a worker process holds a lease on right now."""
    async with database.read() as conn:
        rows = await conn.execute(
            select(webhook_message.c.msg_id).where(
                webhook_message.c.locked_by.like(f"%:{pid}:%"),
                webhook_message.c.status == "pending",
            )
        )
        return [row.msg_id for row in rows]


async def test_a_worker_killed_mid_batch_loses_nothing(
    pg_app: FastAPI,
    postgresql_url: str,
    receiver: Receiver,
    workers: list[subprocess.Popen[bytes]],
) -> None:
    transport = httpx.ASGITransport(app=pg_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        key, account_idx = await new_key(postgresql_url)
        api = Api(http, key, account_idx, clock=pg_app.state.runtime.clock)
        hooks = Hooks(api)
        try:
            webhook_idx = await hooks.listen(receiver)
            receiver.default = Answer(200, delay=0.3)  # keeps every batch in flight a while
            card_idx = await api.card(maxStamps=10)
            stamp_idxs = [await api.stamp(card_idx) for _ in range(STAMPS)]
            for _ in range(ADDS_PER_STAMP):
                for stamp_idx in stamp_idxs:
                    assert await api.add(stamp_idx) == 0
            expected = {m["msgId"]: m for m in await hooks.log(webhook_idx)}
            assert len(expected) == STAMPS * (1 + ADDS_PER_STAMP)

            database = pg_app.state.runtime.db
            victim = start_worker(postgresql_url)
            workers.append(victim)
            # Kill it while a request it posted is still unanswered: that message
            # reached the receiver but was never recorded, so it must come again.
            in_flight: set[str] = set()
            deadline = time.monotonic() + 20
            while not in_flight and time.monotonic() < deadline:
                posted = {r.msg_id for r in receiver.requests()}
                in_flight = posted & set(await leased_by(database, victim.pid))
            assert in_flight, "the first worker never had a batch in flight"
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            posted = {r.msg_id for r in receiver.requests()}
            in_flight = posted & set(await leased_by(database, victim.pid))
            assert in_flight, "the batch finished before the kill landed"

            workers.append(start_worker(postgresql_url))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                log = await hooks.log(webhook_idx)
                if all(m["status"] == "delivered" for m in log):
                    break
                await asyncio.sleep(0.2)
            else:
                pytest.fail("not every message was delivered after the crash")

            requests = receiver.requests()
            assert all(r.signature_ok for r in requests)
            seen = {r.msg_id for r in requests}
            assert seen == set(expected)  # none lost, none invented
            for msg_id in in_flight:
                assert [r.msg_id for r in requests].count(msg_id) >= 2, msg_id
            for request in requests:
                # A repeat is byte-for-byte the message the outbox holds.
                assert request.json == expected[request.msg_id]["payload"]
            for stamp_idx in stamp_idxs:
                first_seen = list(
                    dict.fromkeys(
                        r.msg_id for r in requests if r.json["data"]["stampIdx"] == stamp_idx
                    )
                )
                counts = [expected[m]["payload"]["data"]["stampsAfter"] for m in first_seen]
                assert counts == list(range(ADDS_PER_STAMP + 1)), stamp_idx
        finally:
            await hooks.remove_all()
