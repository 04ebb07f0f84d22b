"""The application factory: the documentation served after the API, and the
startup heap frozen only in the server process."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import BaseRoute

from stampbook.app import create_app, serve_app
from stampbook.config import Settings
from stampbook.kit import logs

DOCUMENTATION = ["/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/docs/assets"]


def path_of(route: BaseRoute) -> str | None:
    return getattr(route, "path", None)


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Start and end with nothing frozen, whatever a test froze."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_the_documentation_routes_come_after_every_api_route(settings: Settings) -> None:
    # Routes are tried in order: the add and validate are not matched against
    # the documentation's paths first.
    paths = [path_of(route) for route in create_app(settings).routes]
    documentation = [paths.index(path) for path in DOCUMENTATION]
    # The API's routers (no path of their own) and routes; the last route of
    # all only answers /api/…/, a trailing slash, with 1003.
    api = [
        index
        for index, path in enumerate(paths)
        if path is None or (path.startswith("/api/") and not path.endswith("{rest:path}/"))
    ]
    assert api and min(documentation) > max(api)
    assert paths[-1] == "/api/{rest:path}/"


async def test_the_documentation_is_served_under_the_root_path(settings: Settings) -> None:
    transport = httpx.ASGITransport(app=create_app(settings), root_path="/stamps")
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        document = (await http.get("/openapi.json")).json()
        swagger = await http.get("/docs")
        redoc = await http.get("/redoc")
        redirect = await http.get("/docs/oauth2-redirect")
    assert document["servers"] == [{"url": "/stamps"}]
    assert "/api/stamp/v1/add" in document["paths"]
    assert document["components"]["securitySchemes"]["APIKey"]["in"] == "header"
    assert swagger.status_code == 200 and "'/stamps/openapi.json'" in swagger.text
    assert "/stamps/docs/oauth2-redirect" in swagger.text
    assert redoc.status_code == 200 and '"/stamps/openapi.json"' in redoc.text
    assert redirect.status_code == 200 and "oauth2" in redirect.text.lower()


async def started_freeze_count(app: FastAPI) -> int:
    async with app.router.lifespan_context(app):
        return gc.get_freeze_count()


@pytest.mark.usefixtures("unfrozen")
async def test_an_app_with_background_jobs_leaves_the_heap_alone(settings: Settings) -> None:
    # A test run or an embedding process that starts the jobs keeps its
    # collector: a frozen object is never freed.
    assert await started_freeze_count(create_app(settings, background=True)) == 0


@pytest.mark.usefixtures("unfrozen")
async def test_the_served_app_freezes_its_startup_heap(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAMPBOOK_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("STAMPBOOK_DISPATCHER_ENABLED", "false")
    # serve_app configures the process's logging; this process is the suite's.
    monkeypatch.setattr(logs, "configure", lambda *args: None)
    assert await started_freeze_count(serve_app()) > 0


@pytest.mark.parametrize(("level", "logged"), [("info", True), ("debug", True), ("warning", False)])
async def test_the_served_app_writes_access_lines_only_at_info_or_below(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    level: str,
    logged: bool,
) -> None:
    # An access line is an info line: STAMPBOOK_LOG_LEVEL=warning silences it,
    # as it silenced uvicorn's.
    monkeypatch.setenv("STAMPBOOK_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("STAMPBOOK_DISPATCHER_ENABLED", "false")
    monkeypatch.setenv("STAMPBOOK_LOG_LEVEL", level)
    monkeypatch.setattr(logs, "configure", lambda *args: None)
    monkeypatch.setattr(gc, "freeze", lambda: None)
    app = serve_app()
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as http,
    ):
        assert (await http.get("/healthz")).status_code == 200
    assert ("/healthz" in capsys.readouterr().err) is logged
