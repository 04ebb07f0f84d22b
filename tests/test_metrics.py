"""/metrics: Prometheus text, read back with prometheus_client's own parser.

The counts are the server's: N adds through a real ``stampbook serve
--workers 2`` raise ``stampbook_stamps_added_total`` by exactly N, whichever
worker answers the scrape. Only loopback clients may read it, or others with
``Authorization: Bearer $STAMPBOOK_METRICS_TOKEN`` when that is set.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import date, timedelta

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from stampbook.app import create_app
from stampbook.config import Settings
from stampbook.kit.clock import FrozenClock
from tests.conftest import Api, new_key, suite_settings
from tests.servers import real_server

TOKEN = "metrics-token-0123456789abcdef"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist yet."""
    return samples(text).get((name, frozenset(labels.items())), 0.0)


async def scrape(http: httpx.AsyncClient) -> str:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_accepted_changes_refusals_and_replays_are_counted(api: Api) -> None:
    before = await scrape(api.http)
    stamp_idx = await api.stamp(await api.card(maxStamps=2))
    for _ in range(3):  # two accepted, the third is 2006 (full)
        await api.add(stamp_idx)
    await api.code("PUT", "remove", json={"stampIdx": stamp_idx})
    await api.add(stamp_idx)
    key = {"Idempotency-Key": "metrics-replay-1"}
    await api.code("PUT", "redeem", json={"stampIdx": stamp_idx}, headers=key)
    await api.code("PUT", "redeem", json={"stampIdx": stamp_idx}, headers=key)  # a replay
    await api.call("PUT", "add", json={"stampz": 1})  # 1001
    after = await scrape(api.http)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("stampbook_stamps_added_total") == 3
    assert delta("stampbook_stamps_removed_total") == 1
    assert delta("stampbook_rewards_redeemed_total") == 1
    assert delta("stampbook_refusals_total", code="2006") == 1
    assert delta("stampbook_refusals_total", code="1001") == 1
    assert delta("stampbook_idempotent_replays_total") == 1
    route = "/api/stamp/v1/add"
    assert delta("stampbook_requests_total", route=route, status="200") == 4
    assert delta("stampbook_requests_total", route=route, status="400") == 1
    assert delta("stampbook_request_duration_seconds_count", route=route) == 5
    # Pool use and the outbox's depth are there, computed for the scrape.
    names = {name for name, _ in samples(after)}
    assert "stampbook_webhook_queue_depth" in names
    assert value(after, "stampbook_db_pool_connections", pool="driver", state="size") >= 1


async def test_a_page_token_never_becomes_a_label(api: Api) -> None:
    stamp_idx = await api.stamp()
    view = (await api.validate(stamp_idx)).json()["result"]
    token = view["stampUrl"].rsplit("/", 1)[1]
    await api.http.get(f"/s/{token}")
    await api.http.get("/no/such/page/secret-looking-path")
    text = await scrape(api.http)
    assert token not in text and "secret-looking-path" not in text
    labels = {dict(labels).get("route") for _, labels in samples(text)}
    assert "/s/{token}" in labels and "unmatched" in labels


async def test_the_rate_limited_are_counted(database_url: str, clock: FrozenClock) -> None:
    app = create_app(suite_settings(database_url, rate_limit="2/minute"), clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            key, _ = await new_key(database_url)
            before = await scrape(http)
            for _ in range(3):
                await http.get("/api/stamp/v1/list", headers={"Authorization": f"APIKey {key}"})
            after = await scrape(http)
    assert (
        value(after, "stampbook_rate_limited_total") - value(before, "stampbook_rate_limited_total")
        == 1
    )
    assert (
        value(after, "stampbook_refusals_total", code="1201")
        - value(before, "stampbook_refusals_total", code="1201")
        == 1
    )


@pytest.fixture
async def remote_app(settings: Settings, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    app = create_app(settings.model_copy(update={"metrics_token": TOKEN}), clock=clock)
    async with app.router.lifespan_context(app):
        yield app


async def client_at(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
async def test_loopback_clients_need_no_token(remote_app: FastAPI, address: str) -> None:
    async with await client_at(remote_app, address) as http:
        assert "stampbook_requests_total" in await scrape(http)


async def test_other_clients_need_the_token(remote_app: FastAPI) -> None:
    async with await client_at(remote_app, "203.0.113.7") as http:
        refused = await http.get("/metrics")
        assert refused.status_code == 403 and refused.json()["code"] == 1102
        assert refused.headers["www-authenticate"] == "Bearer"
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        right = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status_code == 200 and "stampbook_stamps_added_total" in right.text


async def test_without_a_token_only_loopback_may_read(app: FastAPI) -> None:
    async with await client_at(app, "203.0.113.7") as http:
        response = await http.get("/metrics", headers={"Authorization": "Bearer "})
        assert response.status_code == 403 and response.json()["code"] == 1102


@pytest.mark.slow
def test_n_adds_through_two_workers_are_counted_exactly(database_url: str) -> None:
    adds = 40
    key, _ = asyncio.run(new_key(database_url))
    headers = {"Authorization": f"APIKey {key}"}
    with (
        real_server(database_url, workers=2) as server,
        httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as http,
    ):

        def call(method: str, path: str, body: dict[str, object]) -> object:
            answer = http.request(method, f"/api/stamp/v1/{path}", json=body).json()
            assert answer["code"] == 0, answer
            return answer["result"]

        card_idx = call("POST", "card/create", {"cardNm": "Tea", "maxStamps": 100})
        stamp_idx = call(
            "POST",
            "create",
            {
                "cardIdx": card_idx,
                "strtYmd": (date.today() - timedelta(days=1)).isoformat(),
                "endYmd": (date.today() + timedelta(days=30)).isoformat(),
            },
        )
        before = value(http.get("/metrics").text, "stampbook_stamps_added_total")
        for _ in range(adds):
            # A new connection each time, so that both workers take adds.
            answer = httpx.put(
                f"{server.base_url}/api/stamp/v1/add",
                json={"stampIdx": stamp_idx},
                headers=headers,
            )
            assert answer.json()["code"] == 0
        # Each worker publishes its counts every second: within a few seconds
        # every scrape, whichever worker answers it, reads exactly N.
        deadline = time.monotonic() + 15
        counted = 0.0
        while time.monotonic() < deadline:
            text = httpx.get(f"{server.base_url}/metrics").text
            counted = value(text, "stampbook_stamps_added_total") - before
            assert counted <= adds
            if counted == adds:
                break
            time.sleep(0.2)
        assert counted == adds
        for _ in range(6):
            text = httpx.get(f"{server.base_url}/metrics").text
            assert value(text, "stampbook_stamps_added_total") - before == adds
        route = "/api/stamp/v1/add"
        assert value(text, "stampbook_requests_total", route=route, status="200") == adds
        # Both workers' pools are in the sum: the scrape reads every worker's values.
        defaults = Settings()
        per_worker = min(defaults.db_hot_pool_size, defaults.db_pool_size)
        driver_size = value(text, "stampbook_db_pool_connections", pool="driver", state="size")
        assert driver_size == 2 * per_worker
