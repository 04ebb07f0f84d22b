"""Before any route reads a request: the key is checked from the headers alone,
bodies are capped (413 with the envelope, unread beyond the cap), refused keys
are counted per client address (429 with Retry-After beyond the budget), and
forwarded addresses are believed only from trusted proxies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest

from stampbook.app import create_app
from stampbook.config import Settings
from stampbook.kit.clock import FrozenClock
from tests.conftest import Api, new_key
from tests.kit import test_ratelimit
from tests.kit.test_envelope_errors import assert_envelope

REDIS_URL = test_ratelimit.REDIS_URL
redis_prefix = test_ratelimit.redis_prefix  # the fixture, shared

ADD = "/api/stamp/v1/add"
Served = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def serve(settings: Settings, clock: FrozenClock) -> Served:
    """``async with serve(peer=..., **settings)``: a client whose requests come
    from the socket address ``peer``, to an app with changed settings."""

    @asynccontextmanager
    async def running(
        peer: str = "127.0.0.1", **changes: object
    ) -> AsyncIterator[httpx.AsyncClient]:
        application = create_app(settings.model_copy(update=changes), clock=clock)
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(
                app=application, raise_app_exceptions=False, client=(peer, 40000)
            )
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield http

    return running


class Upload:
    """A streamed (chunked) request body that counts how much of it was taken."""

    def __init__(self, total: int, chunk: int = 1024) -> None:
        self.total = total
        self.chunk = chunk
        self.taken = 0

    def __iter__(self) -> Iterator[bytes]:
        while self.taken < self.total:
            self.taken += self.chunk
            yield b" " * self.chunk


async def aiter_upload(upload: Upload) -> AsyncIterator[bytes]:
    for chunk in upload:
        yield chunk


# --- the body cap ---------------------------------------------------------------------


async def test_a_body_declared_over_the_cap_is_413_and_changes_nothing(
    api: Api, settings: Settings
) -> None:
    stamp_idx = await api.stamp()
    body = json.dumps({"stampIdx": stamp_idx, "pad": "x" * settings.max_body_bytes})
    response = await api.http.put(ADD, content=body, headers=api.headers)
    assert_envelope(response, 413, 1005)
    assert response.headers["connection"] == "close"
    assert await api.count(stamp_idx) == 0


async def test_a_streamed_body_is_read_only_up_to_the_cap(api: Api, settings: Settings) -> None:
    upload = Upload(total=10 * 1024 * 1024)
    response = await api.http.put(ADD, content=aiter_upload(upload), headers=api.headers)
    assert_envelope(response, 413, 1005)
    assert upload.taken <= settings.max_body_bytes + 2 * upload.chunk


async def test_a_streamed_body_under_the_cap_is_served(api: Api) -> None:
    stamp_idx = await api.stamp()

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"stampIdx": '
        yield str(stamp_idx).encode() + b"}"

    response = await api.http.put(ADD, content=chunks(), headers=api.headers)
    assert response.json()["code"] == 0
    assert await api.count(stamp_idx) == 1


async def test_a_million_keys_cannot_be_sent_the_cap_refuses_them_unparsed(api: Api) -> None:
    stamp_idx = await api.stamp()
    body = "{" + ",".join(f'"k{i}":0' for i in range(1_000_000)) + f',"stampIdx":{stamp_idx}}}'
    response = await api.http.put(ADD, content=body, headers=api.headers)
    assert_envelope(response, 413, 1005)
    assert await api.count(stamp_idx) == 0


async def test_the_longest_legitimate_bodies_fit_under_the_cap(api: Api) -> None:
    # Every text field at its longest, in Korean, \\u-escaped as json.dumps sends it
    # (six bytes a character): the cap must never refuse a valid request.
    ko = "가"
    card = {
        "cardNm": ko * 200,
        "cardTtl": ko * 500,
        "maxStamps": 10,
        "url": "https://shop.example.com/" + "a" * 1975,
        "stampImgUrl": "https://cdn.example.com/" + "b" * 1976,
        "onsiteYn": "Y",
        "onsitePwd": ko * 100,
        "minIntervalSec": 0,
    }
    card_idx = await api.ok("POST", "card/create", json=card)
    stamp = {
        "cardIdx": card_idx,
        "strtYmd": str(api.today),
        "endYmd": str(api.today),
        "domain": "https://stamps.example.com/" + "c" * 1973,
        "userId": ko * 100,
        "memo": ko * 1000,
        **{name: ko * 200 for name in ("userNm", "userPhnno", "userEml", "userEtc1", "userEtc2")},
    }
    assert len(json.dumps(stamp)) > 14_000
    assert await api.ok("POST", "create", json=stamp) > 0


async def test_a_page_form_over_its_cap_is_a_plain_413_page(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await client.post(
        "/s/" + "x" * 32 + "/pin", data={"pin": "1" * (settings.max_form_bytes + 1)}
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text and '"code"' not in response.text


# --- the key before the body ------------------------------------------------------------


async def test_a_request_without_a_good_key_is_refused_before_its_body_is_read(
    client: httpx.AsyncClient,
) -> None:
    for headers in ({}, {"Authorization": "APIKey sk_unknown"}):
        upload = Upload(total=100 * 1024 * 1024)
        response = await client.put(ADD, content=aiter_upload(upload), headers=headers)
        assert_envelope(response, 401, 1101)
        assert response.headers["connection"] == "close"
        assert upload.taken <= 1024  # at most the chunk httpx had in hand


async def test_a_declared_big_body_without_a_key_is_401_not_413(client: httpx.AsyncClient) -> None:
    response = await client.put(ADD, content=b"x" * (1024 * 1024))
    assert_envelope(response, 401, 1101)


# --- refused keys per client address -----------------------------------------------------


async def test_refused_keys_beyond_the_address_budget_are_429_with_retry_after(
    serve: Served, database_url: str
) -> None:
    key, _ = await new_key(database_url)
    async with serve(peer="192.0.2.10", unauthorized_limit="3/minute") as http:
        bad = {"Authorization": "APIKey sk_guess"}
        answers = [await http.get("/api/stamp/v1/card/list", headers=bad) for _ in range(4)]
        assert [r.status_code for r in answers] == [401, 401, 401, 429]
        limited = assert_envelope(answers[-1], 429, 1201)
        assert limited["message"]
        assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
        # Blocked, the address is refused before any key is looked up: a right
        # guess would be refused too (brute force gains nothing by guessing on).
        good = await http.get("/api/stamp/v1/card/list", headers={"Authorization": f"APIKey {key}"})
        assert_envelope(good, 429, 1201)
    async with serve(peer="192.0.2.11", unauthorized_limit="3/minute") as http:
        other = await http.get(
            "/api/stamp/v1/card/list", headers={"Authorization": f"APIKey {key}"}
        )
        assert other.status_code == 200


async def test_accepted_keys_do_not_spend_the_address_budget(
    serve: Served, database_url: str
) -> None:
    key, _ = await new_key(database_url)
    async with serve(unauthorized_limit="2/minute") as http:
        good = {"Authorization": f"APIKey {key}"}
        for _ in range(5):
            assert (await http.get("/api/stamp/v1/card/list", headers=good)).status_code == 200
        assert (await http.get("/api/stamp/v1/card/list")).status_code == 401


async def test_with_redis_every_worker_counts_an_address_in_one_budget(
    serve: Served, redis_prefix: str
) -> None:
    shared: dict[str, Any] = {
        "peer": "192.0.2.30",
        "unauthorized_limit": "3/minute",
        "redis_url": REDIS_URL,
        "redis_prefix": redis_prefix,
    }
    async with serve(**shared) as worker_a, serve(**shared) as worker_b:
        answers = [
            await worker.get("/api/stamp/v1/card/list")
            for worker in (worker_a, worker_b, worker_a, worker_b)
        ]
    assert [r.status_code for r in answers] == [401, 401, 401, 429]


# --- trusted proxies -----------------------------------------------------------------------


async def refused_until_limited(http: httpx.AsyncClient, forwarded_for: str) -> int:
    """401s answered to requests forwarded for ``forwarded_for`` before a 429."""
    for count in range(10):
        response = await http.get(
            "/api/stamp/v1/card/list", headers={"X-Forwarded-For": forwarded_for}
        )
        if response.status_code == 429:
            return count
        assert response.status_code == 401
    return 10


async def test_forwarded_addresses_are_ignored_from_an_untrusted_peer(serve: Served) -> None:
    async with serve(peer="192.0.2.20", unauthorized_limit="2/minute") as http:
        assert await refused_until_limited(http, "198.51.100.1") == 2
        # Another forwarded address changes nothing: the peer itself is limited.
        assert await refused_until_limited(http, "198.51.100.2") == 0


async def test_forwarded_addresses_are_believed_from_a_trusted_proxy(serve: Served) -> None:
    async with serve(
        peer="10.1.2.3", unauthorized_limit="2/minute", trusted_proxies="127.0.0.1, 10.0.0.0/8"
    ) as http:
        assert await refused_until_limited(http, "198.51.100.1") == 2
        # Each client behind the proxy has its own budget.
        assert await refused_until_limited(http, "198.51.100.2") == 2
        # A client cannot pose as a trusted proxy: the nearest untrusted address counts.
        assert await refused_until_limited(http, "198.51.100.1, 10.9.9.9") == 0


def test_trusted_proxies_are_validated() -> None:
    assert Settings(trusted_proxies="127.0.0.1, ::1, 10.0.0.0/8").trusted_proxies
    for bad in ("localhost", "10.0.0.1/8", "300.1.1.1"):
        with pytest.raises(ValueError):
            Settings(trusted_proxies=bad)


def test_the_defaults_trust_no_proxy_and_bound_bodies_and_guesses() -> None:
    defaults: dict[str, Any] = Settings().model_dump()
    assert defaults["trusted_proxies"] == ""
    assert defaults["max_body_bytes"] <= 64 * 1024
    assert defaults["unauthorized_limit"] == "60/minute"
