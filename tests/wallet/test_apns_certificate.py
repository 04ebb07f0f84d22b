"""APNs with certificate auth: with no APNs key set, the pass type
certificate is the TLS client certificate, and a stand-in that requires one
(issued by the WWDR stand-in) takes the push; without it the handshake fails
and the push stays queued for a retry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from stampbook.app import create_app
from stampbook.kit.clock import FrozenClock
from stampbook.wallet.worker import apns_worker
from tests.conftest import Api, new_key, suite_settings
from tests.wallet.conftest import jobs_for_device, pass_document, token_of
from tests.wallet.pki import PASS_TYPE_ID, ApplePki
from tests.wallet.standins import ApnsStandIn


@pytest.fixture
def apns(tmp_path: Path, apple_pki: ApplePki) -> AsyncIterator[ApnsStandIn]:
    """A stand-in APNs that requires a client certificate from the WWDR stand-in."""
    chain = tmp_path / "client-ca.pem"
    chain.write_bytes(apple_pki.wwdr.read_bytes() + apple_pki.root.read_bytes())
    with ApnsStandIn(tmp_path, client_ca=chain) as standin:
        yield standin  # type: ignore[misc]


async def app_with(
    database_url: str,
    apple_pki: ApplePki,
    apns: ApnsStandIn,
    clock: FrozenClock,
    *,
    token_auth: bool,
) -> FastAPI:
    values = apple_pki.settings()
    if not token_auth:
        del values["apns_key"], values["apns_key_id"]
    settings = suite_settings(
        database_url,
        **values,
        apns_url=apns.url,
        apns_ca_file=str(apns.ca_file),
        apns_timeout_seconds=5,
        wallet_workers_enabled=False,
    )
    return create_app(settings, clock=clock)


async def queue_one_push(
    app: FastAPI, database_url: str, clock: FrozenClock, push_token: str
) -> None:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        key, account_idx = await new_key(database_url)
        api = Api(http, key, account_idx, clock)
        stamp_idx = await api.stamp()
        document = pass_document(
            (await http.get(f"/s/{await token_of(api, stamp_idx)}/pass.pkpass")).content
        )
        registered = await http.post(
            f"/wallet/apple/v1/devices/d-{push_token}/registrations/{PASS_TYPE_ID}/{document['serialNumber']}",
            json={"pushToken": push_token},
            headers={"Authorization": f"ApplePass {document['authenticationToken']}"},
        )
        assert registered.status_code == 201
        assert await api.add(stamp_idx) == 0


async def test_certificate_auth_presents_the_pass_certificate(
    database_url: str, apple_pki: ApplePki, apns: ApnsStandIn, clock: FrozenClock
) -> None:
    app = await app_with(database_url, apple_pki, apns, clock, token_auth=False)
    async with app.router.lifespan_context(app):
        await queue_one_push(app, database_url, clock, "f00d" * 16)
        worker = apns_worker(app.state.runtime)
        try:
            await worker.drain()
        finally:
            await worker.aclose()
    [push] = apns.pushes_to("f00d" * 16)
    assert push.headers["apns-topic"] == PASS_TYPE_ID
    assert "authorization" not in push.headers  # the certificate is the credential
    assert await jobs_for_device(database_url, "f00d" * 16) == []


async def test_without_the_certificate_the_stand_in_refuses_and_the_push_waits(
    database_url: str, apple_pki: ApplePki, apns: ApnsStandIn, clock: FrozenClock
) -> None:
    app = await app_with(database_url, apple_pki, apns, clock, token_auth=True)
    async with app.router.lifespan_context(app):
        await queue_one_push(app, database_url, clock, "beef" * 16)
        worker = apns_worker(app.state.runtime)
        try:
            await worker.drain()
        finally:
            await worker.aclose()
    assert apns.pushes_to("beef" * 16) == []
    [waiting] = await jobs_for_device(database_url, "beef" * 16)
    assert waiting.status == "pending" and waiting.attempts == 1 and waiting.last_error
