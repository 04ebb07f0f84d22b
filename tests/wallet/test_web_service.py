"""Apple's PassKit web service, in process on both databases: registration,
the serials changed since a tag, the latest pass (Last-Modified, 304, HEAD),
unregistering, and the pushes each stamp change queues in its own transaction."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx

from stampbook.stamps import service as stamp_service
from stampbook.wallet.outbox import KIND_APNS
from tests.conftest import Api
from tests.wallet.conftest import jobs_of, pass_document, token_of
from tests.wallet.pki import PASS_TYPE_ID

BASE = "/wallet/apple/v1"


class Phone:
    """One device speaking the web service for one pass."""

    def __init__(
        self, http: httpx.AsyncClient, document: dict[str, Any], device: str, push_token: str
    ):
        self.http = http
        self.serial = document["serialNumber"]
        self.auth = {"Authorization": f"ApplePass {document['authenticationToken']}"}
        self.device = device
        self.push_token = push_token

    @property
    def registration(self) -> str:
        return f"{BASE}/devices/{self.device}/registrations/{PASS_TYPE_ID}/{self.serial}"

    async def register(self, auth: dict[str, str] | None = None) -> httpx.Response:
        return await self.http.post(
            self.registration,
            json={"pushToken": self.push_token},
            headers=self.auth if auth is None else auth,
        )

    async def unregister(self) -> httpx.Response:
        return await self.http.delete(self.registration, headers=self.auth)

    async def serials(self, tag: str | None = None) -> httpx.Response:
        params = {"passesUpdatedSince": tag} if tag else None
        return await self.http.get(
            f"{BASE}/devices/{self.device}/registrations/{PASS_TYPE_ID}", params=params
        )

    async def latest(self, method: str = "GET", **headers: str) -> httpx.Response:
        return await self.http.request(
            method, f"{BASE}/passes/{PASS_TYPE_ID}/{self.serial}", headers={**self.auth, **headers}
        )


async def phone_for(api: Api, stamp_idx: int, device: str = "", push: str = "aa11") -> Phone:
    """A phone that downloaded the stamp's pass (a device id of its own)."""
    device = f"{device or 'device'}-{uuid.uuid4().hex}"
    token = await token_of(api, stamp_idx)
    document = pass_document((await api.http.get(f"/s/{token}/pass.pkpass")).content)
    return Phone(api.http, document, device, push)


async def test_register_201_then_200_and_401_for_a_wrong_token(wallet_api: Api) -> None:
    phone = await phone_for(wallet_api, await wallet_api.stamp())
    assert (await phone.register()).status_code == 201
    assert (await phone.register()).status_code == 200
    refused = await phone.register({"Authorization": "ApplePass not-the-token-of-this-pass"})
    assert refused.status_code == 401 and refused.json()["code"] == 1101
    assert (await phone.register({})).status_code == 401
    assert (await phone.register({"Authorization": "Bearer x"})).status_code == 401


async def test_malformed_requests_are_400_naming_the_field(wallet_api: Api) -> None:
    phone = await phone_for(wallet_api, await wallet_api.stamp())
    answer = await phone.http.post(phone.registration, content=b"{not json", headers=phone.auth)
    assert answer.status_code == 400 and answer.json()["code"] == 1001
    assert "pushToken" in answer.json()["message"]
    answer = await phone.http.post(phone.registration, json={"pushToken": 7}, headers=phone.auth)
    assert answer.status_code == 400
    answer = await phone.http.post(f"{BASE}/log", json={"logs": "x"})
    assert answer.status_code == 400 and "logs" in answer.json()["message"]
    assert (await phone.http.post(f"{BASE}/log", json={"logs": ["a problem"]})).status_code == 200
    assert (await phone.serials("not a tag")).status_code == 400
    # A tag we never gave out (too long for a time) is no tag: every pass, never a 500.
    assert (await phone.register()).status_code == 201
    every = await phone.serials("9" * 40)
    assert every.status_code == 200 and every.json()["serialNumbers"] == [phone.serial]


async def test_a_change_queues_one_push_per_device_and_names_the_pass_since_the_tag(
    wallet_api: Api, database_url: str
) -> None:
    stamp_idx = await wallet_api.stamp()
    phone = await phone_for(wallet_api, stamp_idx)
    other = Phone(
        phone.http,
        {
            "serialNumber": phone.serial,
            "authenticationToken": phone.auth["Authorization"].split()[1],
        },
        f"device-{uuid.uuid4().hex}",
        "bb22",
    )
    assert (await phone.register()).status_code == 201
    assert (await other.register()).status_code == 201
    before = (await phone.serials()).json()
    assert before["serialNumbers"] == [phone.serial]
    unrelated = await phone_for(
        wallet_api, await wallet_api.stamp(), device="device-9", push="cc33"
    )
    assert (await unrelated.register()).status_code == 201
    already = len(await jobs_of(database_url, kind=KIND_APNS))

    wallet_api.clock.advance(seconds=2)
    assert await wallet_api.add(stamp_idx) == 0
    assert stamp_service.ONE_STEP  # an accepted add goes the one-step way
    jobs = (await jobs_of(database_url, kind=KIND_APNS))[already:]
    assert len(jobs) == 2  # one per device of this pass, none for the unrelated one

    assert (await unrelated.serials(before["lastUpdated"])).status_code == 204
    since = await phone.serials(before["lastUpdated"])
    assert since.status_code == 200
    assert since.json()["serialNumbers"] == [phone.serial]
    assert since.json()["lastUpdated"] != before["lastUpdated"]
    assert (await phone.serials(since.json()["lastUpdated"])).status_code == 204


async def test_every_verb_queues_and_delete_voids_the_pass(
    wallet_api: Api, database_url: str
) -> None:
    stamp_idx = await wallet_api.stamp(await wallet_api.card(maxStamps=2))
    phone = await phone_for(wallet_api, stamp_idx)
    assert (await phone.register()).status_code == 201

    async def queued() -> int:
        return len(await jobs_of(database_url, kind=KIND_APNS))

    counts = [await queued()]
    assert await wallet_api.add(stamp_idx) == 0
    counts.append(await queued())
    assert await wallet_api.code("PUT", "remove", json={"stampIdx": stamp_idx}) == 0
    counts.append(await queued())
    assert await wallet_api.code("PUT", "update", json={"stampIdx": stamp_idx, "stamps": 2}) == 0
    counts.append(await queued())
    assert await wallet_api.code("PUT", "redeem", json={"stampIdx": stamp_idx}) == 0
    counts.append(await queued())
    assert [b - a for a, b in itertools.pairwise(counts)] == [1, 1, 1, 1]
    assert (
        pass_document((await phone.latest()).content)["storeCard"]["primaryFields"][0]["value"]
        == "2 / 2"
    )
    assert pass_document((await phone.latest()).content)["voided"] is True  # a used reward

    assert await wallet_api.code("DELETE", "delete", params={"stampIdx": stamp_idx}) == 0
    assert await queued() == counts[-1] + 1
    voided = await phone.latest()
    assert voided.status_code == 200
    document = pass_document(voided.content)
    assert document["voided"] is True
    assert document["storeCard"]["headerFields"][0]["value"] == "void"


async def test_the_latest_pass_last_modified_304_and_head(wallet_api: Api) -> None:
    stamp_idx = await wallet_api.stamp()
    phone = await phone_for(wallet_api, stamp_idx)
    first = await phone.latest()
    assert first.status_code == 200
    modified = first.headers["last-modified"]
    assert (await phone.latest(**{"If-Modified-Since": modified})).status_code == 304
    head = await phone.latest("HEAD")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(first.content)

    wallet_api.clock.advance(seconds=5)
    assert await wallet_api.add(stamp_idx) == 0
    newer = await phone.latest(**{"If-Modified-Since": modified})
    assert newer.status_code == 200
    assert pass_document(newer.content)["storeCard"]["primaryFields"][0]["value"] == "1 / 10"
    later = format_datetime(datetime(2100, 1, 1, tzinfo=UTC), usegmt=True)
    assert (await phone.latest(**{"If-Modified-Since": later})).status_code == 304
    refused = await phone.http.get(
        f"{BASE}/passes/{PASS_TYPE_ID}/{phone.serial}",
        headers={"Authorization": "ApplePass wrong-token-wrong-token"},
    )
    assert refused.status_code == 401


async def test_unregister_stops_the_pushes(wallet_api: Api, database_url: str) -> None:
    stamp_idx = await wallet_api.stamp()
    phone = await phone_for(wallet_api, stamp_idx, device="device-u", push="dd44")
    assert (await phone.register()).status_code == 201
    assert await wallet_api.add(stamp_idx) == 0
    queued = len(await jobs_of(database_url, kind=KIND_APNS))
    assert (await phone.unregister()).status_code == 200
    # The device's pushes still queued went with its registration.
    assert len(await jobs_of(database_url, kind=KIND_APNS)) == queued - 1
    assert await wallet_api.add(stamp_idx) == 0
    assert len(await jobs_of(database_url, kind=KIND_APNS)) == queued - 1
    assert (await phone.serials()).status_code == 204
