"""The API reference works on a closed network, and ``/`` leads a browser somewhere.

``/docs`` (Swagger UI) and ``/redoc`` load their scripts and styles from the
server (``kit/docs_assets``, pinned copies of the npm packages), never from a
CDN: a real Chromium with every request off 127.0.0.1 aborted still lists the
operations. A browser opening ``/`` goes to the dashboard when one is mounted,
else to the docs; an API client still gets the envelope.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route

from stampbook.kit.openapi import DOCS_ASSETS
from tests.kit.test_envelope_errors import assert_envelope
from tests.page.test_browser import DESKTOP, PHONE, browser, server

__all__ = ["browser", "server"]  # fixtures shared with the stamp page's browser tests

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
EXTERNAL = re.compile(r"(?:src|href)=[\"']?(?:https?:)?//", re.IGNORECASE)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_the_reference_pages_name_no_other_host(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert not EXTERNAL.search(response.text), response.text
    assert "/docs/assets/" in response.text


async def test_the_vendored_files_are_the_pinned_ones_and_served(client: httpx.AsyncClient) -> None:
    pinned = json.loads((DOCS_ASSETS / "VENDORED.json").read_text())
    for package in pinned.values():
        for name, digest in package["files"].items():
            assert hashlib.sha256((DOCS_ASSETS / name).read_bytes()).hexdigest() == digest, name
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        response = await client.get(f"/docs/assets/{name}")
        assert response.status_code == 200
        assert response.content == (DOCS_ASSETS / name).read_bytes()


async def test_a_browser_at_the_root_is_sent_to_the_dashboard(client: httpx.AsyncClient) -> None:
    response = await client.get("/", headers=HTML)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/"


async def test_an_api_client_at_the_root_gets_the_envelope(client: httpx.AsyncClient) -> None:
    assert_envelope(await client.get("/"), 404, 1003)
    assert_envelope(await client.get("/", headers={"Accept": "application/json"}), 404, 1003)


class OfflineBrowser:
    """A browser profile whose every request off the test server is aborted."""

    def __init__(self, browser: Browser, server: str) -> None:
        self.server = server
        self.context = browser.new_context(viewport=PHONE)
        self.aborted: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._only_the_server)
        self.page: Page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _only_the_server(self, route: Route) -> None:
        url = route.request.url
        if url.startswith(self.server + "/"):
            route.continue_()
        else:
            self.aborted.append(url)
            route.abort()

    def shoot(self, artifacts: Path, name: str) -> None:
        """The page at phone size, then at desktop size."""
        self.page.screenshot(path=str(artifacts / f"docs-{name}-phone.png"))
        self.page.set_viewport_size(DESKTOP)
        self.page.screenshot(path=str(artifacts / f"docs-{name}-desktop.png"))


@pytest.fixture
def offline(browser: Browser, server: str) -> Iterator[OfflineBrowser]:
    profile = OfflineBrowser(browser, server)
    yield profile
    profile.context.close()


def api_paths(server: str) -> list[str]:
    document: dict[str, Any] = httpx.get(f"{server}/openapi.json").json()
    return [path for path in document["paths"] if path.startswith("/api/")]


@pytest.mark.browser
def test_swagger_ui_lists_the_operations_with_the_network_blocked(
    offline: OfflineBrowser, server: str, artifacts: Path
) -> None:
    offline.page.goto(f"{server}/docs")
    offline.page.wait_for_selector(".opblock", timeout=30_000)
    shown = offline.page.locator(".opblock-summary-path").all_inner_texts()
    listed = {text.replace("\u200b", "").strip() for text in shown}
    assert set(api_paths(server)) <= listed
    offline.shoot(artifacts, "swagger")
    assert offline.aborted == [] and offline.errors == []


@pytest.mark.browser
def test_redoc_renders_with_the_network_blocked(
    offline: OfflineBrowser, server: str, artifacts: Path
) -> None:
    offline.page.goto(f"{server}/redoc")
    offline.page.get_by_text("Add exactly one stamp, if every rule allows it.").first.wait_for(
        timeout=30_000
    )
    assert offline.page.locator("[data-section-id]").count() >= len(api_paths(server))
    offline.shoot(artifacts, "redoc")
    assert offline.aborted == [] and offline.errors == []
