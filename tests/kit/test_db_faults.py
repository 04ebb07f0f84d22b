"""Database failures are answered 503 with the envelope, logged once per burst with
their cause, and told by /readyz: PostgreSQL down, a database never migrated,
an SQLite disk full.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.pool import Pool

from stampbook.app import create_app
from stampbook.db.migrate import upgrade
from tests.conftest import DATABASES, POSTGRES_ADMIN_URL, new_key, suite_settings
from tests.servers import admin_sql, free_port

FAKE_KEY = {"Authorization": "APIKey sb_" + "x" * 40}


@asynccontextmanager
async def serving(database_url: str, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process app on ``database_url``; yields a client for it."""
    application = create_app(suite_settings(database_url, **settings))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def db_lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    """The database log lines containing ``text``."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "stampbook.db" and text in r.getMessage()
    ]


def assert_refused(response: httpx.Response, code: int) -> None:
    body = response.json()
    assert list(body) == ["code", "message", "result"], body
    assert (response.status_code, body["code"]) == (503, code), body


async def test_postgresql_down_is_503_1902_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="stampbook.db")
    closed = f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/stampbook"
    async with serving(closed, db_connect_timeout_seconds=1) as http:
        for _ in range(5):
            assert_refused(await http.get("/api/stamp/v1/card/list", headers=FAKE_KEY), 1902)
        ready = await http.get("/readyz")

    lines = db_lines(caplog, "database unavailable")
    assert len(lines) == 1, lines  # one line for the burst, with its cause
    assert "Error" in lines[0] and "hunter2" not in caplog.text
    assert ready.status_code == 503 and ready.json()["database"] == "unavailable"


@pytest.fixture(params=DATABASES)
def empty_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database that exists but was never migrated, on each database in turn."""
    if request.param == "sqlite":
        with tempfile.TemporaryDirectory(prefix="stampbook-empty-") as directory:
            yield f"sqlite:///{directory}/empty.db"
        return
    name = f"stampbook_empty_{os.getpid()}_{secrets.token_hex(4)}"
    admin_sql(POSTGRES_ADMIN_URL, f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_ADMIN_URL.rpartition('/')[0]}/{name}"
    finally:
        admin_sql(POSTGRES_ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_an_unmigrated_database_is_1903_and_readyz_names_it(
    empty_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="stampbook.db")
    async with serving(empty_database) as http:
        for path in ("card/list", "validate?stampIdx=1"):
            assert_refused(await http.get(f"/api/stamp/v1/{path}", headers=FAKE_KEY), 1903)
        ready = await http.get("/readyz")

    assert ready.status_code == 503
    assert (ready.json()["status"], ready.json()["database"]) == ("unavailable", "not migrated")
    assert "stampbook db upgrade" in ready.json()["detail"]
    assert len(db_lines(caplog, "not migrated")) == 1


async def test_a_database_behind_the_code_is_not_ready(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'behind.db'}"
    await asyncio.to_thread(upgrade, url)
    with sqlite3.connect(tmp_path / "behind.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0000_older'")
    async with serving(url) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["database"] == "not migrated"
    assert "0000_older" in ready.json()["detail"]


@pytest.fixture
def full_sqlite(tmp_path: Any) -> Iterator[str]:
    """A migrated SQLite file whose connections may not grow it by a page: a
    full disk, as SQLite sees one (SQLITE_FULL), with no filesystem tricks."""
    path = str(tmp_path / "full.db")
    url = f"sqlite:///{path}"
    upgrade(url)

    def cap(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA database_list")
        files = [row[2] for row in cursor.fetchall()]
        if os.path.realpath(path) in [os.path.realpath(f) for f in files if f]:
            cursor.execute("PRAGMA page_count")
            pages = cursor.fetchone()[0]
            cursor.execute(f"PRAGMA max_page_count = {pages}")
        cursor.close()

    event.listen(Pool, "connect", cap)
    try:
        yield url
    finally:
        event.remove(Pool, "connect", cap)


async def test_a_full_sqlite_disk_is_503_logged_once_and_not_ready(
    full_sqlite: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="stampbook.db")
    key, _ = await new_key(full_sqlite)
    headers = {"Authorization": f"APIKey {key}"}
    card = {"cardNm": "x" * 200, "cardTtl": "y" * 500, "maxStamps": 10}
    async with serving(full_sqlite) as http:
        codes = []
        for _ in range(100):
            response = await http.post("/api/stamp/v1/card/create", json=card, headers=headers)
            codes.append(response.json()["code"])
            if codes[-1] != 0:
                assert_refused(response, 1902)
        ready = await http.get("/readyz")

    assert 1902 in codes
    lines = db_lines(caplog, "database unavailable")
    assert len(lines) == 1 and "full" in lines[0], lines
    assert ready.status_code == 503 and ready.json()["database"] == "storage full"
