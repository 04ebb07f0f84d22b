"""The Python SDK against a live app: results, refusals as ApiError, safe retries."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from packaging.requirements import Requirement

from stampbook import client as compat_client
from stampbook.app import create_app
from stampbook.config import Settings
from stampbook_client import ApiError, AsyncStampClient, StampClient
from tests.conftest import Api, new_key

CLIENT_DIR = Path(__file__).parent.parent / "clients" / "python"


async def test_the_async_client_runs_the_whole_cycle(api: Api) -> None:
    transport = httpx.ASGITransport(app=api.http._transport.app)  # type: ignore[attr-defined]
    async with AsyncStampClient("http://testserver", api.key, transport=transport) as stamps:
        card_idx = await stamps.create_card(cardNm="Tea", maxStamps=2)
        start, end = api.today.isoformat(), (api.today + timedelta(days=30)).isoformat()
        stamp_idx = await stamps.create(card_idx, start, end, userNm="Park")
        await stamps.add(stamp_idx)
        await stamps.add(stamp_idx)
        with pytest.raises(ApiError) as refused:
            await stamps.add(stamp_idx)
        assert (refused.value.code, refused.value.http_status) == (2006, 200)
        assert (await stamps.validate(stamp_idx))["stamps"] == 2
        await stamps.redeem(stamp_idx)
        history = await stamps.history(stamp_idx)
        assert [e["action"] for e in history["items"]] == ["USE", "ADD", "ADD", "CREATE"]
        assert [s["stampIdx"] async for s in stamps.iter_stamps(limit=1)] == [stamp_idx]
        assert (await stamps.get_card(card_idx))["cardNm"] == "Tea"


async def test_a_retried_write_reuses_its_idempotency_key(api: Api) -> None:
    """The first answer is lost (a 503 after the server applied the add): the retry
    carries the same key, so the stamp is added once."""
    app_transport = httpx.ASGITransport(app=api.http._transport.app)  # type: ignore[attr-defined]
    keys: list[str] = []

    class LosesFirstAnswer(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await app_transport.handle_async_request(request)
            if request.url.path.endswith("/add"):
                keys.append(request.headers["idempotency-key"])
                if len(keys) == 1:
                    await response.aread()
                    return httpx.Response(503, json={"code": 1902, "message": "", "result": None})
            return response

    stamp_idx = await api.stamp()
    client = AsyncStampClient("http://testserver", api.key, transport=LosesFirstAnswer())
    async with client as stamps:
        await stamps.add(stamp_idx)
    assert len(keys) == 2 and keys[0] == keys[1]
    assert await api.count(stamp_idx) == 1


@pytest.fixture
def live_server(database_url: str) -> Iterator[str]:
    """A real uvicorn server in a thread, for the synchronous client."""
    app = create_app(Settings(database_url=database_url, rate_limit="off"))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_the_sync_client_speaks_to_a_real_server(live_server: str, database_url: str) -> None:
    key, _ = asyncio.run(new_key(database_url))
    with StampClient(live_server, key, language="ko") as stamps:
        card_idx = stamps.create_card(cardNm="Bread", maxStamps=3)
        stamp_idx = stamps.create(card_idx, "2020-01-01", "2020-12-31")
        with pytest.raises(ApiError) as expired:
            stamps.add(stamp_idx)
        assert expired.value.code == 2004
        assert "만료" in expired.value.message
        with pytest.raises(ApiError) as too_long:
            stamps.update(stamp_idx, endYmd="2099-12-31")
        assert too_long.value.code == 2012
        with pytest.raises(ApiError) as negative:
            stamps.update(stamp_idx, stamps=-1)
        assert (negative.value.code, negative.value.http_status) == (1001, 400)
        next_year = (date.today() + timedelta(days=365)).isoformat()
        stamps.update(stamp_idx, stamps=2, endYmd=next_year)
        stamps.add(stamp_idx)
        stamps.remove(stamp_idx)
        assert stamps.validate(stamp_idx)["stamps"] == 2
        assert [s["stampIdx"] for s in stamps.iter_stamps(cardIdx=card_idx)] == [stamp_idx]
        stamps.delete(stamp_idx)
        stamps.delete_card(card_idx)
        with pytest.raises(ApiError) as gone:
            stamps.get_card(card_idx)
        assert gone.value.code == 2101
    with StampClient(live_server, "sk_wrong") as stranger, pytest.raises(ApiError) as denied:
        stranger.list_cards()
    assert (denied.value.code, denied.value.http_status) == (1101, 401)


def test_stampbook_client_is_the_sdk_package_reexported() -> None:
    """Code written against ``stampbook.client`` gets the one SDK, not a copy."""
    assert compat_client.StampClient is StampClient
    assert compat_client.AsyncStampClient is AsyncStampClient
    assert compat_client.ApiError is ApiError


def test_the_sdk_is_a_distribution_of_its_own_needing_httpx_alone() -> None:
    """clients/python declares httpx as its only dependency, and importing the SDK
    loads neither the server nor any of the server's libraries."""
    project = tomllib.loads((CLIENT_DIR / "pyproject.toml").read_text())["project"]
    assert project["name"] == "stampbook-client"
    assert [Requirement(dep).name for dep in project["dependencies"]] == ["httpx"]
    probe = "import sys, stampbook_client; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    for server_side in ("stampbook", "fastapi", "sqlalchemy", "pydantic", "starlette"):
        assert f"'{server_side}'" not in loaded
    assert "'httpx'" in loaded
