"""A real webhook receiver on 127.0.0.1, and helpers to drive the outbox.

The receiver is a threaded HTTP server: it answers from a script (status,
delay, headers, body; 200 once the script runs out), records every request,
and checks each signature with the ``standardwebhooks`` package against the
secrets it was given.
"""

from __future__ import annotations

import ipaddress
import socket
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
from stampbook.webhooks import safety
from stampbook.webhooks.dispatcher import Dispatcher
from tests.conftest import Api

# An endpoint address nothing listens on: for tests that only look at the outbox.
RECEIVER = "http://127.0.0.1:9/never-called"
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
        return await self.listen_at(receiver.url, receiver, **fields)

    async def listen_at(self, url: str, receiver: Receiver, **fields: Any) -> int:
        """Register ``url`` (a name for ``receiver``) and teach ``receiver`` the secret."""
        webhook_idx, secret = await self.create(url, **fields)
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


# The "internet" of these tests: TEST-NET-3 (RFC 5737), never routed. Tests
# that need a public address use one of these, counted as public by the
# ``internet`` fixture; the suite's network guard refuses any connection to it.
TEST_NET = ipaddress.ip_network("203.0.113.0/24")


@pytest.fixture
def internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Count TEST-NET-3 addresses as public, as a real public address would be."""
    real = safety.is_public
    monkeypatch.setattr(safety, "is_public", lambda address: address in TEST_NET or real(address))


class FakeDns:
    """Scripted name resolution for the process: each lookup of a name takes
    its next answer (the last one repeats); every lookup is counted."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self._answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []
        self._lock = threading.Lock()

    def answer(self, name: str, *answers: list[str]) -> None:
        """Script the answers of ``name``'s next lookups (an empty list: no address)."""
        with self._lock:
            self._answers[name] = [list(answer) for answer in answers]

    def count(self, name: str) -> int:
        """How many times ``name`` was looked up."""
        with self._lock:
            return self.lookups.count(name)

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        """``socket.getaddrinfo`` for the scripted names; the real one otherwise."""
        name = host.decode() if isinstance(host, bytes) else str(host)
        with self._lock:
            script = self._answers.get(name)
            if script is None:
                return self._real(host, port, *args, **kwargs)
            self.lookups.append(name)
            addresses = script.pop(0) if len(script) > 1 else script[0]
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, f"{name} has no address")
        infos = []
        for address in addresses:
            parsed = ipaddress.ip_address(address)
            family = socket.AF_INET6 if parsed.version == 6 else socket.AF_INET
            port_number = int(port or 0)
            sockaddr: tuple[Any, ...] = (
                (address, port_number, 0, 0) if parsed.version == 6 else (address, port_number)
            )
            infos.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        return infos


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    """Scripted DNS for this test (both the dispatcher's lookups and httpx's)."""
    fake = FakeDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake
