"""A real webhook receiver on 127.0.0.1, and helpers to drive the outbox.

The receiver is a threaded HTTP server: it answers from a script (status,
delay, headers, body; 200 once the script runs out), records every request,
and checks each signature with the ``standardwebhooks`` package against the
secrets it was given.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from standardwebhooks import Webhook

from stampbook.db.schema import webhook_message
from stampbook.kit.clock import FrozenClock
from stampbook.kit.db import Database
from stampbook.webhooks.dispatcher import Dispatcher
from tests.conftest import Api

TEST_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class Answer:
    """One scripted answer of the receiver."""

    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    @property
    def msg_id(self) -> str:
        """The ``webhook-id`` header."""
        return self.headers["webhook-id"]

    @property
    def json(self) -> Any:
        """The body, parsed."""
        return orjson.loads(self.body)


def signature_matches(secrets: list[str], headers: dict[str, str], body: bytes) -> bool:
    """True when one of the ``v1`` signatures was made with one of ``secrets``.

    The timestamp is taken from the header rather than checked against the
    wall clock, because tests move the dispatcher's clock hours ahead.
    """
    try:
        msg_id = headers["webhook-id"]
        stamp = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
        sent = headers["webhook-signature"].split(" ")
    except (KeyError, ValueError):
        return False
    expected = {
        Webhook(secret).sign(msg_id=msg_id, timestamp=stamp, data=body.decode())
        for secret in secrets
    }
    return any(signature in expected for signature in sent)


class Receiver:
    """A scripted HTTP endpoint running in a thread."""

    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.script: list[Answer] = []
        self.received: list[Received] = []
        self.default = Answer()
        self._lock = threading.Lock()
        self._stopped = False
        self.arrived = threading.Event()  # set by every request
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                with receiver._lock:
                    ok = signature_matches(receiver.secrets, headers, body)
                    receiver.received.append(Received(self.path, headers, body, ok))
                    receiver.arrived.set()
                    answer = receiver.script.pop(0) if receiver.script else receiver.default
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except OSError:
                    pass  # the dispatcher gave up waiting (the timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        """The URL events should be posted to."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hooks"

    def answer(self, *answers: Answer) -> None:
        """Queue answers for the next requests."""
        with self._lock:
            self.script.extend(answers)

    def requests(self) -> list[Received]:
        """Every request so far, in arrival order."""
        with self._lock:
            return list(self.received)

    def start(self) -> None:
        """Start serving."""
        self.thread.start()

    def stop(self) -> None:
        """Stop serving (again is harmless); its port then refuses connections."""
        if not self._stopped:
            self._stopped = True
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver on a free port of 127.0.0.1."""
    server = Receiver()
    server.start()
    yield server
    server.stop()


async def settle_leftovers(db: Database) -> None:
    """Mark every pending message failed.

    Tests share the session's database and run one at a time: messages other
    tests left pending (their receivers long gone) are settled before a test
    drains the outbox, so its batches hold only its own messages.
    """
    async with db.write() as conn:
        await conn.execute(
            update(webhook_message)
            .where(webhook_message.c.status == "pending")
            .values(status="failed")
        )


@pytest.fixture
async def dispatcher(app: FastAPI, clock: FrozenClock) -> AsyncIterator[Dispatcher]:
    """A dispatcher on the app's database and frozen clock, without jitter, with a
    short timeout so the timeout test takes half a second rather than fifteen."""
    runtime = app.state.runtime
    await settle_leftovers(runtime.db)
    async with Dispatcher(
        runtime.db, clock=clock, timeout=TEST_TIMEOUT_SECONDS, allow_private=True, jitter=0.0
    ) as instance:
        yield instance


class Hooks:
    """The webhook API of one test account."""

    def __init__(self, api: Api) -> None:
        self.api = api

    async def create(self, url: str, **fields: Any) -> tuple[int, str]:
        """Register an endpoint; returns (webhookIdx, secret)."""
        result = await self.api.ok("POST", "webhook/create", json={"url": url, **fields})
        return int(result["webhookIdx"]), str(result["secret"])

    async def listen(self, receiver: Receiver, **fields: Any) -> int:
        """Register ``receiver`` as an endpoint and teach it the secret."""
        webhook_idx, secret = await self.create(receiver.url, **fields)
        receiver.secrets.append(secret)
        return webhook_idx

    async def log(self, webhook_idx: int, **params: Any) -> list[dict[str, Any]]:
        """The endpoint's delivery log, oldest message first."""
        page = await self.api.ok(
            "GET", "webhook/deliveries", params={"webhookIdx": webhook_idx, "limit": 100, **params}
        )
        return list(reversed(page["items"]))

    async def endpoint(self, webhook_idx: int) -> dict[str, Any]:
        """The endpoint as list shows it."""
        page = await self.api.ok("GET", "webhook/list", params={"limit": 100})
        for item in page["items"]:
            if item["webhookIdx"] == webhook_idx:
                return dict(item)
        raise AssertionError(f"webhook {webhook_idx} not listed")

    async def remove_all(self) -> None:
        """Delete every endpoint of the account (and so its messages)."""
        page = await self.api.ok("GET", "webhook/list", params={"limit": 100})
        for item in page["items"]:
            await self.api.ok("DELETE", "webhook/delete", params={"webhookIdx": item["webhookIdx"]})


@pytest.fixture
async def hooks(api: Api) -> AsyncIterator[Hooks]:
    """The account's webhook API; its endpoints are deleted afterwards, so no other
    test's dispatcher meets this test's messages in the shared database."""
    helper = Hooks(api)
    yield helper
    await helper.remove_all()
