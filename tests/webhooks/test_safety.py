"""Webhook URLs: http(s) only, and never the server's own network unless allowed.

Public addresses here are data for the classifier, or TEST-NET-3 addresses
(the ``internet`` fixture) where an endpoint must be saved at one: no test
saves an endpoint where a dispatcher would deliver to the internet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from stampbook.app import create_app
from stampbook.config import Settings
from stampbook.kit.clock import FrozenClock
from stampbook.webhooks.dispatcher import Dispatcher
from stampbook.webhooks.safety import UnresolvedHost, UnsafeUrl, is_public, parse_target, vet
from tests import network_guard
from tests.conftest import Api
from tests.webhooks.conftest import FakeDns, Hooks, Receiver, settle_leftovers

NOT_PUBLIC = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "::1",
    "fe80::1",
    "fc00::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
]
PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_private_loopback_and_link_local_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "file:///etc/passwd", "http://", "http://user:pw@example.com/"]
)
def test_only_plain_http_and_https_urls_are_targets(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        parse_target(url)


async def test_names_are_judged_by_every_address_they_resolve_to(dns: FakeDns) -> None:
    with pytest.raises(UnsafeUrl):
        await vet("http://localhost:8080/x", allow_private=False)
    dns.answer("mixed.example.test", ["203.0.113.7", "127.0.0.1"])
    with pytest.raises(UnsafeUrl, match=r"127\.0\.0\.1"):
        await vet("http://mixed.example.test/x", allow_private=False)
    # A literal address needs no lookup; the allowance lets any address through.
    literal = await vet("https://93.184.215.14/x", allow_private=False)
    assert [str(a) for a in literal.addresses] == ["93.184.215.14"]
    assert literal.port == 443
    allowed = await vet("http://127.0.0.1:9/x", allow_private=True)
    assert (allowed.host, allowed.port) == ("127.0.0.1", 9)


async def test_the_vetted_target_is_named_as_the_connection_names_it(dns: FakeDns) -> None:
    dns.answer("xn--bcher-kva.example.test", ["127.0.0.1"])
    target = await vet("https://Bücher.Example.TEST:8443/hooks", allow_private=True)
    assert (target.host, target.port) == ("xn--bcher-kva.example.test", 8443)
    assert [str(a) for a in target.addresses] == ["127.0.0.1"]
    ipv6 = await vet("http://[::1]/hooks", allow_private=True)
    assert (ipv6.host, ipv6.port) == ("::1", 80)


async def test_a_name_without_an_address_is_unresolved_even_when_private_is_allowed(
    dns: FakeDns,
) -> None:
    dns.answer("gone.example.test", [])
    for allow_private in (False, True):
        with pytest.raises(UnresolvedHost):
            await vet("https://gone.example.test/hooks", allow_private=allow_private)


@pytest.fixture
async def strict_app(settings: Settings, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    """The app as deployed: private webhook targets refused."""
    strict = settings.model_copy(
        update={"webhook_allow_private": False, "dispatcher_enabled": False}
    )
    application = create_app(strict, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hooks",
        "http://localhost/hooks",
        "http://[::1]/hooks",
        "http://10.0.0.5/hooks",
        "http://169.254.169.254/latest/meta-data",
    ],
)
async def test_the_api_refuses_private_targets_with_2202(
    strict_app: FastAPI, api: Api, url: str, internet: None
) -> None:
    transport = httpx.ASGITransport(app=strict_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        strict = Api(http, api.key, api.account_idx, api.clock)
        assert await strict.code("POST", "webhook/create", json={"url": url}) == 2202
        created = await strict.ok("POST", "webhook/create", json={"url": "https://203.0.113.9/"})
        try:
            update = {"webhookIdx": created["webhookIdx"], "url": url}
            assert await strict.code("PUT", "webhook/update", json=update) == 2202
            # A message is queued for the public endpoint; with no dispatcher
            # running here, nothing is sent.
            await strict.stamp()
            page = await strict.ok(
                "GET", "webhook/deliveries", params={"webhookIdx": created["webhookIdx"]}
            )
            assert [m["attempts"] for m in page["items"]] == [[]]
            assert network_guard.take() == []
        finally:
            await strict.ok(
                "DELETE", "webhook/delete", params={"webhookIdx": created["webhookIdx"]}
            )


async def test_a_name_that_does_not_resolve_is_not_saved_2204(
    api: Api, hooks: Hooks, dns: FakeDns
) -> None:
    dns.answer("nowhere.example.test", [])
    url = "https://nowhere.example.test/hooks"
    response = await api.call("POST", "webhook/create", json={"url": url})
    assert (response.status_code, response.json()["code"]) == (200, 2204)
    webhook_idx, _ = await hooks.create("http://127.0.0.1:9/hooks")
    update = {"webhookIdx": webhook_idx, "url": url}
    assert await api.code("PUT", "webhook/update", json=update) == 2204
    assert (await hooks.endpoint(webhook_idx))["url"] == "http://127.0.0.1:9/hooks"


async def test_the_dispatcher_checks_again_before_posting(
    app: FastAPI, api: Api, hooks: Hooks, receiver: Receiver, clock: FrozenClock
) -> None:
    webhook_idx = await hooks.listen(receiver)  # saved while private targets were allowed
    await settle_leftovers(app.state.runtime.db)
    await api.stamp()

    async with Dispatcher(app.state.runtime.db, clock=clock, allow_private=False) as strict:
        (outcome,) = await strict.drain()

    assert outcome.response.status_code is None
    assert receiver.requests() == []
    (message,) = await hooks.log(webhook_idx)
    assert message["status"] == "pending"
    assert message["attempts"][0]["error"].startswith("refused: 127.0.0.1")
