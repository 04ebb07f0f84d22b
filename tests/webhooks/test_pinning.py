"""A delivery connects to exactly the address it vetted (no DNS rebinding),
with the Host header, TLS server name and certificate check of the URL's name.

Name resolution is scripted (``dns``); the public address the rebinding name
answers first is a TEST-NET-3 one that the suite's network guard refuses to
connect to, so nothing ever leaves the machine.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest
import trustme
from fastapi import FastAPI

from stampbook.kit.clock import FrozenClock
from stampbook.webhooks.dispatcher import Dispatcher
from stampbook.webhooks.pinning import PinnedTransport
from stampbook.webhooks.schedule import Verdict
from tests import network_guard
from tests.webhooks.conftest import FakeDns, Hooks, Receiver, settle_leftovers

REBINDING = "rebind.example.test"
PUBLIC_FIRST = "203.0.113.7"


async def test_a_name_that_answers_loopback_after_the_check_reaches_nothing_internal(
    app: FastAPI,
    hooks: Hooks,
    receiver: Receiver,
    dns: FakeDns,
    internet: None,
    clock: FrozenClock,
) -> None:
    # ``receiver`` plays an internal service on loopback that must hear nothing.
    port = receiver.server.server_address[1]
    dns.answer(REBINDING, ["127.0.0.1"])
    webhook_idx = await hooks.listen_at(f"http://{REBINDING}:{port}/internal", receiver)
    await settle_leftovers(app.state.runtime.db)
    await hooks.api.stamp()
    # From now on the name answers a public address once, then loopback.
    dns.answer(REBINDING, [PUBLIC_FIRST], ["127.0.0.1"])
    before = dns.count(REBINDING)

    async with Dispatcher(app.state.runtime.db, clock=clock, allow_private=False) as strict:
        (outcome,) = await strict.drain()

    assert receiver.requests() == []
    # One lookup for the delivery, and its connection went to the vetted address
    # (refused by the suite's guard, as every public address is).
    assert dns.count(REBINDING) - before == 1
    assert network_guard.take() == [f"{PUBLIC_FIRST}:{port}"]
    assert outcome.response.status_code is None
    (message,) = await hooks.log(webhook_idx)
    (attempt,) = message["attempts"]
    assert attempt["error"].startswith("ConnectError")
    assert attempt["response"] is None


async def test_the_pinned_connection_reaches_the_vetted_address_with_the_name_as_host(
    hooks: Hooks, receiver: Receiver, dispatcher: Dispatcher, dns: FakeDns
) -> None:
    port = receiver.server.server_address[1]
    # The first address refuses (nothing listens on 127.0.0.2 there); the next is tried.
    dns.answer("hooks.pinned.test", ["127.0.0.2", "127.0.0.1"])
    await hooks.listen_at(f"http://hooks.pinned.test:{port}/hooks", receiver)
    await hooks.api.stamp()

    outcomes = await dispatcher.drain()

    assert [outcome.verdict for outcome in outcomes] == [Verdict.DELIVERED]
    (request,) = receiver.requests()
    assert request.headers["host"] == f"hooks.pinned.test:{port}"
    assert request.signature_ok


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    """A throwaway certificate authority, made for this run."""
    return trustme.CA()


@pytest.fixture
def tls_receiver(receiver: Receiver, authority: trustme.CA) -> Iterator[tuple[Receiver, list[str]]]:
    """``receiver`` behind TLS with a certificate for hooks.pinned.test only (no
    IP address in it); the second item lists the server names clients sent."""
    server_names: list[str] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("hooks.pinned.test").configure_cert(context)

    def record(_sock: object, name: str | None, _context: object) -> None:
        server_names.append(str(name))

    context.sni_callback = record
    receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
    yield receiver, server_names


def trusting(authority: trustme.CA) -> PinnedTransport:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return PinnedTransport(limits=httpx.Limits(max_connections=4), verify=context)


@pytest.mark.parametrize("name", ["hooks.pinned.test", "other.pinned.test"])
async def test_tls_checks_the_certificate_against_the_urls_name_not_the_address(
    app: FastAPI,
    hooks: Hooks,
    tls_receiver: tuple[Receiver, list[str]],
    authority: trustme.CA,
    dns: FakeDns,
    clock: FrozenClock,
    name: str,
) -> None:
    receiver, server_names = tls_receiver
    port = receiver.server.server_address[1]
    dns.answer(name, ["127.0.0.1"])
    webhook_idx = await hooks.listen_at(f"https://{name}:{port}/hooks", receiver)
    await settle_leftovers(app.state.runtime.db)
    await hooks.api.stamp()
    db = app.state.runtime.db

    async with Dispatcher(
        db, clock=clock, allow_private=True, transport=trusting(authority)
    ) as dispatcher:
        (outcome,) = await dispatcher.drain()

    assert server_names == [name]
    if name == "hooks.pinned.test":
        assert outcome.verdict is Verdict.DELIVERED
        (request,) = receiver.requests()
        assert request.headers["host"] == f"{name}:{port}"
    else:  # the certificate is valid for 127.0.0.1's server, but not for this name
        assert receiver.requests() == []
        (message,) = await hooks.log(webhook_idx)
        assert "CERTIFICATE_VERIFY_FAILED" in message["attempts"][0]["error"]
