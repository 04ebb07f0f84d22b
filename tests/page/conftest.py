"""Helpers for the stamp page's HTTP tests: a browser-like client per visitor."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from stampbook.db.schema import stamp
from stampbook.kit.db import Database
from tests.conftest import Api

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def page_path(stamp_url: str) -> str:
    """``/s/{token}`` from a stampUrl."""
    return urlsplit(stamp_url).path


async def stamp_url(api: Api, stamp_idx: int) -> str:
    """The stamp's page URL, read through list (works whatever the stamp's state)."""
    page = await api.ok("GET", "list", params={"limit": 100})
    for item in page["items"]:
        if item["stampIdx"] == stamp_idx:
            return str(item["stampUrl"])
    raise AssertionError(f"stamp {stamp_idx} not listed")


async def stamp_row(database_url: str, stamp_idx: int) -> Any:
    """The stamp's row, straight from the database."""
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            query = select(stamp).where(stamp.c.stamp_idx == stamp_idx)
            return (await conn.execute(query)).one()
    finally:
        await database.dispose()


async def page_of(api: Api, stamp_idx: int) -> str:
    """``/s/{token}`` of a stamp."""
    return page_path(await stamp_url(api, stamp_idx))


def shown_state(response: httpx.Response) -> str:
    """The card state the page shows."""
    found = re.search(r'data-state="(\w+)"', response.text)
    assert found, response.text
    return found.group(1)


class Visitor:
    """One browser (its own cookie jar) looking at one stamp page."""

    def __init__(self, http: httpx.AsyncClient, path: str) -> None:
        self.http = http
        self.path = path

    async def get(self, suffix: str = "", **kwargs: Any) -> httpx.Response:
        """GET the page (or ``/staff``, ``/qr.svg`` …)."""
        return await self.http.get(self.path + suffix, **kwargs)

    async def csrf(self, suffix: str = "") -> str:
        """The CSRF token of the form on the page (or the staff page)."""
        response = await self.get(suffix)
        found = CSRF_FIELD.search(response.text)
        assert found, response.text
        return found.group(1)

    async def post(
        self, suffix: str, data: dict[str, str], *, form_from: str = "", **kwargs: Any
    ) -> httpx.Response:
        """Send a form with a fresh CSRF token taken from ``form_from``."""
        token = await self.csrf(form_from)
        return await self.http.post(self.path + suffix, data={"csrf": token, **data}, **kwargs)

    async def set_pin(self, pin: str) -> httpx.Response:
        """Choose the PIN (first visit)."""
        return await self.post("/pin", {"pin": pin, "pin2": pin})

    async def enter_pin(self, pin: str) -> httpx.Response:
        """Enter the PIN (later visits)."""
        return await self.post("/pin", {"pin": pin})

    async def staff(self, password: str) -> httpx.Response:
        """Send the staff form as the staff page shows it, with ``password``."""
        page = await self.get("/staff")
        token = CSRF_FIELD.search(page.text)
        action = re.search(r'name="action" value="(\w+)"', page.text)
        expect = re.search(r'name="expect" value="(\d+)"', page.text)
        assert token and action and expect, page.text
        return await self.http.post(
            self.path + "/staff",
            data={
                "csrf": token.group(1),
                "action": action.group(1),
                "expect": expect.group(1),
                "password": password,
            },
        )


VisitorFactory = Callable[..., AbstractAsyncContextManager[Visitor]]


def loopback_address() -> str:
    """A random address in 127.0.0.0/8: each visitor is a client of its own, so
    per-address lockouts of one test never reach another's."""
    return "127." + ".".join(str(secrets.randbelow(254) + 1) for _ in range(3))


def browser_client(app: FastAPI, address: str | None = None) -> httpx.AsyncClient:
    """An in-process HTTP client for ``app`` seen as coming from ``address``."""
    transport = httpx.ASGITransport(
        app=app, raise_app_exceptions=False, client=(address or loopback_address(), 50000)
    )
    # https, as a phone sees the page: its cookies are Secure (the public URL
    # is https), and a browser sends those back over https only.
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


@pytest.fixture
def visitor(app: FastAPI) -> VisitorFactory:
    """``async with visitor(path) as v``: a fresh browser on the page at ``path``,
    from an address of its own (or ``address=``)."""

    @asynccontextmanager
    async def open_visitor(path: str, *, address: str | None = None) -> AsyncIterator[Visitor]:
        async with browser_client(app, address) as http:
            yield Visitor(http, path)

    return open_visitor
