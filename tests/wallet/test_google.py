"""Google Wallet on both databases: the "Save to Google Wallet" JWT verifies
with the service account's public key; the class and the object reach a
stand-in REST server (a real HTTP server on 127.0.0.1), and a PATCH follows
each change, every call with a bearer token from a stand-in token endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from stampbook.app import create_app
from stampbook.kit.clock import FrozenClock
from stampbook.wallet.outbox import KIND_GOOGLE
from stampbook.wallet.worker import google_worker
from tests.conftest import Api, new_key, suite_settings
from tests.wallet.conftest import jobs_of, pass_idx_of, token_of
from tests.wallet.pki import ISSUER_ID, GoogleAccount
from tests.wallet.standins import GoogleStandIn


@pytest.fixture
def google() -> Iterator[GoogleStandIn]:
    """The stand-in Google."""
    with GoogleStandIn() as standin:
        yield standin


@pytest.fixture
async def google_app(
    database_url: str, google_account: GoogleAccount, google: GoogleStandIn, clock: FrozenClock
) -> AsyncIterator[FastAPI]:
    """An app with Google Wallet only, speaking to the stand-in."""
    settings = suite_settings(
        database_url,
        **google_account.settings(),
        **google.settings(),
        wallet_workers_enabled=False,
    )
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def google_api(
    google_app: FastAPI, database_url: str, clock: FrozenClock
) -> AsyncIterator[Api]:
    """A fresh account on the Google app."""
    transport = httpx.ASGITransport(app=google_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        key, account_idx = await new_key(database_url)
        yield Api(http, key, account_idx, clock)


async def save_link(api: Api, stamp_idx: int) -> str:
    answer = await api.http.get(f"/s/{await token_of(api, stamp_idx)}/google-wallet")
    assert answer.status_code == 303
    return answer.headers["location"]


def link_serial(link: str) -> str:
    """The pass serial inside a save link's object id."""
    claims = jwt.decode(link.rsplit("/", 1)[1], options={"verify_signature": False})
    return str(claims["payload"]["loyaltyObjects"][0]["id"].split(".", 1)[1])


async def test_the_save_jwt_verifies_with_the_service_accounts_key(
    google_api: Api, google_account: GoogleAccount
) -> None:
    card_idx = await google_api.card(cardNm="Bean Bar", maxStamps=8)
    stamp_idx = await google_api.stamp(card_idx)
    assert await google_api.add(stamp_idx) == 0
    link = await save_link(google_api, stamp_idx)
    assert link.startswith("https://pay.google.com/gp/v/save/")
    claims = jwt.decode(
        link.removeprefix("https://pay.google.com/gp/v/save/"),
        google_account.public_pem,
        algorithms=["RS256"],
        audience="google",
    )
    assert claims["typ"] == "savetowallet"
    assert claims["iss"] == google_account.email
    assert claims["origins"] == ["https://stamps.example.test"]
    loyalty = claims["payload"]["loyaltyObjects"][0]
    klass = claims["payload"]["loyaltyClasses"][0]
    assert klass["id"] == f"{ISSUER_ID}.stampbook-card-{card_idx}"
    assert klass["programName"] == "Bean Bar"
    assert loyalty["classId"] == klass["id"]
    issuer, serial = loyalty["id"].split(".", 1)
    assert issuer == ISSUER_ID and len(serial) >= 16 and not serial.isdigit()
    assert loyalty["loyaltyPoints"]["balance"] == {"int": 1}
    assert loyalty["state"] == "ACTIVE"
    token = await token_of(google_api, stamp_idx)
    assert loyalty["barcode"]["value"] == f"https://stamps.example.test/s/{token}"

    with pytest.raises(jwt.InvalidSignatureError):
        header, body, signature = link.removeprefix("https://pay.google.com/gp/v/save/").split(".")
        forged = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
        jwt.decode(
            f"{header}.{forged}.{signature}",
            google_account.public_pem,
            algorithms=["RS256"],
            audience="google",
        )


async def test_the_class_and_object_are_created_then_patched_after_an_add(
    google_api: Api,
    google_app: FastAPI,
    google: GoogleStandIn,
    database_url: str,
    google_account: GoogleAccount,
) -> None:
    stamp_idx = await google_api.stamp()
    link = await save_link(google_api, stamp_idx)
    object_id = jwt.decode(
        link.rsplit("/", 1)[1], google_account.public_pem, algorithms=["RS256"], audience="google"
    )["payload"]["loyaltyObjects"][0]["id"]
    assert len(await jobs_of(database_url, kind=KIND_GOOGLE)) >= 1

    worker = google_worker(google_app.state.runtime)
    try:
        await worker.drain()
        assert object_id in google.objects
        assert google.objects[object_id]["loyaltyPoints"]["balance"] == {"int": 0}
        made = [(c.method, c.path.split("/")[3]) for c in google.calls if c.path != "/token"]
        assert ("POST", "loyaltyClass") in made and ("POST", "loyaltyObject") in made

        before = len(google.calls)
        assert await google_api.add(stamp_idx) == 0
        await worker.drain()
        patches = [c for c in google.calls[before:] if c.method == "PATCH"]
        assert [c.path for c in patches] == [f"/walletobjects/v1/loyaltyObject/{object_id}"]
        assert patches[0].body["loyaltyPoints"]["balance"] == {"int": 1}
        assert google.objects[object_id]["loyaltyPoints"]["balance"] == {"int": 1}

        assert await google_api.code("DELETE", "delete", params={"stampIdx": stamp_idx}) == 0
        await worker.drain()
        assert google.objects[object_id]["state"] == "INACTIVE"
    finally:
        await worker.aclose()

    rest = [c for c in google.calls if c.path != "/token"]
    assert rest and all(c.authorization == f"Bearer {GoogleStandIn.TOKEN}" for c in rest)
    assert google.tokens_issued == 1  # cached until it expires
    grant: dict[str, Any] = next(c.body for c in google.calls if c.path == "/token")
    assert grant["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    assertion = jwt.decode(
        grant["assertion"][0],
        google_account.public_pem,
        algorithms=["RS256"],
        audience=f"{google.base}/token",
    )
    assert assertion["iss"] == google_account.email
    assert assertion["scope"] == "https://www.googleapis.com/auth/wallet_object.issuer"
    ours = await pass_idx_of(database_url, object_id.split(".", 1)[1])
    assert [
        job for job in await jobs_of(database_url, kind=KIND_GOOGLE) if job.pass_idx == ours
    ] == []


async def test_the_objects_state_follows_a_redemption_and_an_expiry(
    google_api: Api, google_app: FastAPI, google: GoogleStandIn, google_account: GoogleAccount
) -> None:
    card_idx = await google_api.card(maxStamps=1)
    redeemed, lapsing = await google_api.stamp(card_idx), await google_api.stamp(card_idx)
    ids = {}
    for stamp_idx in (redeemed, lapsing):
        link = await save_link(google_api, stamp_idx)
        claims = jwt.decode(
            link.rsplit("/", 1)[1], google_account.public_pem, algorithms=["RS256"],
            audience="google",
        )  # fmt: skip
        ids[stamp_idx] = claims["payload"]["loyaltyObjects"][0]["id"]
    worker = google_worker(google_app.state.runtime)
    try:
        await worker.drain()
        assert {google.objects[i]["state"] for i in ids.values()} == {"ACTIVE"}
        assert await google_api.add(redeemed) == 0
        await google_api.ok("PUT", "redeem", json={"stampIdx": redeemed})
        past = (google_api.today - timedelta(days=1)).isoformat()
        await google_api.ok(
            "PUT", "update", json={"stampIdx": lapsing, "strtYmd": past, "endYmd": past}
        )
        await worker.drain()
        assert google.objects[ids[redeemed]]["state"] == "COMPLETED"
        assert google.objects[ids[lapsing]]["state"] == "EXPIRED"
    finally:
        await worker.aclose()


async def test_a_failed_call_is_retried_later(
    google_api: Api, google_app: FastAPI, google: GoogleStandIn, database_url: str
) -> None:
    google.server.shutdown()  # Google unreachable
    google.server.server_close()
    stamp_idx = await google_api.stamp()
    link = await save_link(google_api, stamp_idx)
    worker = google_worker(google_app.state.runtime)
    try:
        await worker.drain()
    finally:
        await worker.aclose()
    ours = await pass_idx_of(database_url, link_serial(link))
    [job] = [job for job in await jobs_of(database_url, kind=KIND_GOOGLE) if job.pass_idx == ours]
    assert job.status == "pending" and job.attempts == 1 and job.last_error
    assert job.next_attempt_at > job.created_at
