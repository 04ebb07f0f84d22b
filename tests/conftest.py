"""Fixtures shared by the whole suite.

Every test that touches a database runs twice: on SQLite and on the
machine's real PostgreSQL. Each test session migrates a fresh SQLite file
and a fresh PostgreSQL database (dropped afterwards) with Alembic, so runs
never see each other's rows; each test then works in an account of its own.

``STAMPBOOK_TEST_DATABASES=sqlite`` narrows a local run to SQLite on
purpose. An unreachable PostgreSQL is an error, never a skip.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Select, delete, insert, select

from stampbook.accounts import service as accounts
from stampbook.app import create_app
from stampbook.config import Settings
from stampbook.db.migrate import upgrade
from stampbook.db.schema import stamp_event, webhook_endpoint
from stampbook.kit.clock import FrozenClock, utc_naive
from stampbook.kit.db import Database
from tests import network_guard
from tests.servers import admin_sql

POSTGRES_ADMIN_URL = os.environ.get(
    "STAMPBOOK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
DATABASES = [
    name.strip()
    for name in os.environ.get("STAMPBOOK_TEST_DATABASES", "sqlite,postgresql").split(",")
    if name.strip()
]
ARTIFACTS = Path(__file__).parent / "artifacts"

network_guard.install()


@pytest.fixture(autouse=True)
def loopback_only() -> Iterator[None]:
    """Fail any test that tried to connect beyond loopback (the attempt itself
    was refused before a packet left; see tests/network_guard.py)."""
    network_guard.take()
    yield
    refused = network_guard.take()
    assert not refused, f"tests talk only to loopback; this one tried {refused}"


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A freshly migrated SQLite file for this session."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'stampbook.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    """A freshly created and migrated PostgreSQL database, dropped after the session."""
    name = f"stampbook_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        admin_sql(POSTGRES_ADMIN_URL, f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL at {POSTGRES_ADMIN_URL} is required for the test suite and is not "
            f"reachable ({exc}). Start it, or run with STAMPBOOK_TEST_DATABASES=sqlite locally.",
            pytrace=False,
        )
    url = _with_database(POSTGRES_ADMIN_URL, name)
    upgrade(url)
    yield url
    admin_sql(POSTGRES_ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest) -> str:
    """Each database the suite runs on, in turn."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def clock() -> FrozenClock:
    """A clock frozen at the real now; tests move it with ``advance``."""
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


def suite_settings(database_url: str, **overrides: Any) -> Settings:
    """The suite's settings for ``database_url``, with ``overrides``."""
    values: dict[str, Any] = {
        "public_url": "https://stamps.example.test",
        "rate_limit": "off",
        "webhook_allow_private": True,
        "dispatcher_enabled": False,
        # Every request looks its key up, so a test that revokes a key sees it
        # refused at once; the cache's own tests turn it on (tests/test_key_cache.py).
        "key_cache": False,
        **overrides,
    }
    return Settings(database_url=database_url, **values)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Test settings: the database under test, rate limits off, a fixed public URL."""
    return suite_settings(database_url)


@pytest.fixture
async def app(settings: Settings, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    """The app, with its lifespan running."""
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client speaking to the app in-process (no key)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


class Api:
    """A client for one fresh account, with shortcuts for the common calls."""

    def __init__(self, http: httpx.AsyncClient, key: str, account_idx: int, clock: FrozenClock):
        self.http = http
        self.key = key
        self.account_idx = account_idx
        self.clock = clock
        self.headers = {"Authorization": f"APIKey {key}"}

    @property
    def today(self) -> date:
        """Today in UTC (the test accounts' zone)."""
        return self.clock.now().date()

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Any request to ``/api/stamp/v1/<path>`` with this account's key."""
        return await self.http.request(
            method,
            f"/api/stamp/v1/{path}",
            json=json,
            params=params,
            headers={**self.headers, **(headers or {})},
        )

    async def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call and assert code 0; return the result."""
        response = await self.call(method, path, **kwargs)
        body = response.json()
        assert response.status_code == 200 and body["code"] == 0, body
        return body["result"]

    async def code(self, method: str, path: str, **kwargs: Any) -> int:
        """Call and return the envelope's code (asserting the envelope's shape)."""
        response = await self.call(method, path, **kwargs)
        body = response.json()
        assert list(body) == ["code", "message", "result"], body
        return int(body["code"])

    async def card(self, **fields: Any) -> int:
        """Create a card (10 stamps by default); returns its cardIdx."""
        body = {"cardNm": "Coffee", "cardTtl": "10 coffees, one free", "maxStamps": 10, **fields}
        return int(await self.ok("POST", "card/create", json=body))

    async def stamp(self, card_idx: int | None = None, **fields: Any) -> int:
        """Issue a stamp valid from yesterday for a year; returns its stampIdx."""
        if card_idx is None:
            card_idx = await self.card()
        body = {
            "cardIdx": card_idx,
            "strtYmd": (self.today - timedelta(days=1)).isoformat(),
            "endYmd": (self.today + timedelta(days=365)).isoformat(),
            **fields,
        }
        return int(await self.ok("POST", "create", json=body))

    async def add(self, stamp_idx: int, **kwargs: Any) -> int:
        """PUT add; returns the code."""
        return await self.code("PUT", "add", json={"stampIdx": stamp_idx}, **kwargs)

    async def validate(self, stamp_idx: int) -> httpx.Response:
        """GET validate."""
        return await self.call("GET", "validate", params={"stampIdx": stamp_idx})

    async def count(self, stamp_idx: int) -> int:
        """The stamp's current count, read through list (works whatever its state)."""
        page = await self.ok("GET", "list", params={"limit": 100})
        for item in page["items"]:
            if item["stampIdx"] == stamp_idx:
                return int(item["stamps"])
        raise AssertionError(f"stamp {stamp_idx} not listed")

    async def history(self, stamp_idx: int) -> list[dict[str, Any]]:
        """The stamp's whole ledger, newest first."""
        return list(
            (await self.ok("GET", "history", params={"stampIdx": stamp_idx, "limit": 100}))["items"]
        )


async def new_key(database_url: str, *, name: str | None = None) -> tuple[str, int]:
    """Create an account with a key directly in the database; returns (key, account_idx)."""
    database = Database(database_url, pool_size=1)
    try:
        async with database.write() as conn:
            created = await accounts.create_key(
                conn,
                account_name=name or f"test-{uuid.uuid4().hex[:12]}",
                now=utc_naive(datetime.now(UTC)),
            )
    finally:
        await database.dispose()
    return created.key, created.account_idx


@pytest.fixture
async def api(client: httpx.AsyncClient, database_url: str, clock: FrozenClock) -> Api:
    """A fresh account and key, speaking through ``client``."""
    key, account_idx = await new_key(database_url)
    return Api(client, key, account_idx, clock)


@pytest.fixture
async def other_api(client: httpx.AsyncClient, database_url: str, clock: FrozenClock) -> Api:
    """A second, unrelated account on the same server."""
    key, account_idx = await new_key(database_url)
    return Api(client, key, account_idx, clock)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots and other evidence go (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@asynccontextmanager
async def subscribed(database_url: str, api: Api) -> AsyncIterator[None]:
    """A webhook endpoint for the account while the block runs, so every change queues
    messages; removed afterwards (with its messages) so no dispatcher test sees them."""
    database = Database(database_url, pool_size=1)
    try:
        async with database.write() as conn:
            await conn.execute(
                insert(webhook_endpoint).values(
                    account_idx=api.account_idx,
                    url="https://hooks.example.test/stamps",
                    secret="whsec_dGVzdA==",
                    reg_ymdt=api.clock.now().replace(tzinfo=None),
                )
            )
        yield
    finally:
        async with database.write() as conn:
            await conn.execute(
                delete(webhook_endpoint).where(webhook_endpoint.c.account_idx == api.account_idx)
            )
        await database.dispose()


async def rows(database_url: str, query: Select[Any]) -> list[Any]:
    """``query``'s rows, read straight from the database on a connection of its own."""
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            return list((await conn.execute(query)).all())
    finally:
        await database.dispose()


async def ledger(database_url: str, stamp_idx: int) -> list[Any]:
    """The stamp's ledger rows, oldest first, straight from the database."""
    return await rows(
        database_url,
        select(stamp_event)
        .where(stamp_event.c.stamp_idx == stamp_idx)
        .order_by(stamp_event.c.event_idx),
    )
