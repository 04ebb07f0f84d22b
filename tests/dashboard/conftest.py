"""Helpers for the dashboard's HTTP tests: accounts with users, and a browser
(its own cookie jar) that signs in and sends the dashboard's forms."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from stampbook.accounts import users
from stampbook.config import Settings
from stampbook.kit.clock import utc_naive
from stampbook.kit.db import Database
from tests.conftest import Api, FrozenClock, new_key, suite_settings
from tests.page.conftest import browser_client

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
PASSWORD = "correct horse battery"
SESSION_COOKIE = "__Host-sb_session"  # the tests speak https, as the public URL says


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The suite's settings; sign-in answers are not slowed (tests measure no time)."""
    return suite_settings(
        database_url, login_slow_seconds=0, login_email_failures=3, login_address_failures=6
    )


async def add_user(database_url: str, account_idx: int, role: str, email: str | None = None) -> str:
    """A user of ``account_idx`` with ``PASSWORD``; returns the email."""
    address = email or f"{role}-{uuid.uuid4().hex[:10]}@example.com"
    password_hash = await users.hash_password(PASSWORD)
    database = Database(database_url, pool_size=1)
    try:
        async with database.write() as conn:
            await users.create_user(
                conn,
                account_idx=account_idx,
                email=address,
                role=role,
                password_hash=password_hash,
                now=utc_naive(datetime.now(UTC)),
            )
    finally:
        await database.dispose()
    return address


class Browser:
    """One browser on the dashboard."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET a dashboard address."""
        return await self.http.get(path, **kwargs)

    async def csrf(self, path: str) -> str:
        """The CSRF token of the forms on the page at ``path``."""
        response = await self.get(path)
        found = CSRF_FIELD.search(response.text)
        assert found, (response.status_code, response.text[:2000])
        return found.group(1)

    async def post(
        self,
        path: str,
        data: dict[str, str] | None = None,
        *,
        form_from: str | None = None,
        once: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a form as the page at ``form_from`` (default: ``path``) would, with
        a CSRF token from it and a fresh (or the given) once-token."""
        token = await self.csrf(form_from or path)
        body = {"csrf": token, "once": once or secrets.token_urlsafe(16), **(data or {})}
        return await self.http.post(path, data=body, **kwargs)

    async def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        """Sign in through the form."""
        return await self.post(
            "/dashboard/login", {"email": email, "password": password}, form_from="/dashboard/login"
        )


@dataclass
class Shop:
    """An account with its API and its owner's and a staff member's emails."""

    api: Api
    owner: str
    staff: str


@pytest.fixture
async def shop(client: httpx.AsyncClient, database_url: str, clock: FrozenClock) -> Shop:
    """A fresh account with an owner and a staff member."""
    key, account_idx = await new_key(database_url)
    api = Api(client, key, account_idx, clock)
    owner = await add_user(database_url, account_idx, "owner")
    staff = await add_user(database_url, account_idx, "staff")
    return Shop(api, owner, staff)


@pytest.fixture
async def other_shop(client: httpx.AsyncClient, database_url: str, clock: FrozenClock) -> Shop:
    """A second, unrelated account with its own people."""
    key, account_idx = await new_key(database_url)
    api = Api(client, key, account_idx, clock)
    owner = await add_user(database_url, account_idx, "owner")
    staff = await add_user(database_url, account_idx, "staff")
    return Shop(api, owner, staff)


BrowserFactory = Callable[..., AbstractAsyncContextManager[Browser]]


@pytest.fixture
def browser(app: FastAPI) -> BrowserFactory:
    """``async with browser(email) as b``: a fresh browser, signed in as ``email``
    (or signed out with None), from an address of its own."""

    @asynccontextmanager
    async def open_browser(
        email: str | None = None, *, address: str | None = None
    ) -> AsyncIterator[Browser]:
        async with browser_client(app, address) as http:
            b = Browser(http)
            if email is not None:
                response = await b.sign_in(email)
                assert response.status_code == 303, response.text[:2000]
            yield b

    return open_browser
