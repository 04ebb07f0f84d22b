"""Webhook URLs: http(s) only, and never the server's own network unless allowed."""

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
from stampbook.webhooks.safety import UnsafeUrl, check_target, is_public, parse_target
from tests.conftest import Api
from tests.webhooks.conftest import Hooks, Receiver, settle_leftovers

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


async def test_names_are_judged_by_what_they_resolve_to() -> None:
    with pytest.raises(UnsafeUrl):
        await check_target("http://localhost:8080/x", allow_private=False, strict_dns=False)
    # A literal public address needs no lookup; the allowance lets anything through.
    await check_target("https://93.184.215.14/x", allow_private=False, strict_dns=True)
    await check_target("http://127.0.0.1/x", allow_private=True, strict_dns=True)


@pytest.fixture
async def strict_app(settings: Settings, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    """The app as deployed: private webhook targets refused."""
    strict = settings.model_copy(update={"webhook_allow_private": False})
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
    strict_app: FastAPI, api: Api, url: str
) -> None:
    transport = httpx.ASGITransport(app=strict_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        strict = Api(http, api.key, api.account_idx, api.clock)
        assert await strict.code("POST", "webhook/create", json={"url": url}) == 2202
        created = await strict.ok("POST", "webhook/create", json={"url": "https://93.184.215.14/"})
        update = {"webhookIdx": created["webhookIdx"], "url": url}
        assert await strict.code("PUT", "webhook/update", json=update) == 2202
        await strict.ok("DELETE", "webhook/delete", params={"webhookIdx": created["webhookIdx"]})


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
