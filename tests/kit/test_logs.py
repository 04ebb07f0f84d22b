"""Logs never carry a customer page's token, which is the key to that card."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from stampbook.kit.clock import FrozenClock
from stampbook.kit.logs import redact_paths
from tests.conftest import Api, new_key
from tests.servers import real_server

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("line", "logged"),
    [
        ('"GET /s/Ab3-x_9Q HTTP/1.1" 200', '"GET /s/<redacted> HTTP/1.1" 200'),
        ("POST /s/Ab3x9Q/pin?next=1", "POST /s/<redacted>/pin?next=1"),
        ("https://shop.example/s/Ab3x9Q", "https://shop.example/s/<redacted>"),
        ("GET /c/RECEIPT42", "GET /c/<redacted>"),
        ("GET /static/stamp/default.svg", "GET /static/stamp/default.svg"),
    ],
)
def test_secret_path_segments_are_redacted(line: str, logged: str) -> None:
    assert redact_paths(line) == logged


async def test_the_access_log_of_a_page_request_carries_no_token(database_url: str) -> None:
    env = {"STAMPBOOK_LOG_LEVEL": "info", "STAMPBOOK_LOG_FORMAT": "json"}
    with real_server(database_url, workers=1, env=env) as server:
        key, account_idx = await new_key(database_url)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            api = Api(http, key, account_idx, FrozenClock(datetime.now(UTC)))
            stamp_idx = await api.stamp()
            view = await api.ok("GET", "validate", params={"stampIdx": stamp_idx})
            token = view["stampUrl"].rsplit("/s/", 1)[1]
            assert (await http.get(f"/s/{token}")).status_code == 200
            assert (await http.get(f"/s/{token}/qr.svg")).status_code == 200
        # uvicorn writes (and flushes) the line before it sends the answer.
        log = server.log()

    page_lines = [line for line in log.splitlines() if "/s/" in line]
    assert len(page_lines) == 2, log
    assert token not in log
    assert all("/s/<redacted>" in line for line in page_lines), page_lines


async def test_every_request_has_an_access_line_with_method_path_status_and_duration(
    database_url: str,
) -> None:
    env = {"STAMPBOOK_LOG_LEVEL": "info", "STAMPBOOK_LOG_FORMAT": "json"}
    # Two workers: each configures logging in its own process after uvicorn has.
    with real_server(database_url, workers=2, env=env) as server:
        key, account_idx = await new_key(database_url)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            api = Api(http, key, account_idx, FrozenClock(datetime.now(UTC)))
            stamp_idx = await api.stamp()
            await api.ok("PUT", "add", json={"stampIdx": stamp_idx})
            await api.ok("GET", "validate", params={"stampIdx": stamp_idx})
            assert (await http.get("/api/stamp/v1/validate?stampIdx=1")).status_code == 401
        log = server.log()

    lines = [json.loads(line) for line in log.splitlines() if '"stampbook.access"' in line]
    by_request = {
        (line["method"], line["path"].split("?")[0], line["status"]): line for line in lines
    }
    assert ("PUT", "/api/stamp/v1/add", 200) in by_request, lines
    assert ("GET", "/api/stamp/v1/validate", 200) in by_request, lines
    assert ("GET", "/api/stamp/v1/validate", 401) in by_request, lines
    validate = by_request[("GET", "/api/stamp/v1/validate", 200)]
    assert validate["path"] == f"/api/stamp/v1/validate?stampIdx={stamp_idx}"
    for line in lines:
        assert isinstance(line["duration_ms"], float | int) and line["duration_ms"] >= 0, line
        assert line["client"].startswith("127.0.0.1:"), line
    # uvicorn's own access log is off: one line per request, not two.
    assert '"uvicorn.access"' not in log
