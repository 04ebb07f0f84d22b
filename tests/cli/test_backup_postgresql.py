"""PostgreSQL: ``stampbook backup`` dumps with pg_dump, and docs/deploy.md's
restore (``pg_restore`` into a fresh database) brings back a stamp the API
then validates with the same key."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from stampbook.app import create_app
from stampbook.config import Settings
from stampbook.db.backup import pg_dump_environment
from tests.cli.test_backup import stampbook
from tests.conftest import POSTGRES_ADMIN_URL, new_key
from tests.servers import admin_sql, scratch_database

pytestmark = pytest.mark.slow


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """An empty database of a unique name on the shared server, dropped afterwards."""
    name = f"stampbook_restore_{os.getpid()}_{secrets.token_hex(4)}"
    admin_sql(POSTGRES_ADMIN_URL, f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_ADMIN_URL.rpartition('/')[0]}/{name}"
    finally:
        admin_sql(POSTGRES_ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def call(url: str, key: str, method: str, path: str, **kwargs: Any) -> Any:
    """One API call to an app on ``url``; asserts code 0 and returns the result."""
    app = create_app(Settings(database_url=url, rate_limit="off", dispatcher_enabled=False))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t/api/stamp/v1/") as http,
    ):
        response = await http.request(
            method, path, headers={"Authorization": f"APIKey {key}"}, **kwargs
        )
    body = response.json()
    assert body["code"] == 0, body
    return body["result"]


def test_a_dump_restored_into_a_fresh_database_validates_its_stamp(
    tmp_path: Path, fresh_database: str
) -> None:
    assert shutil.which("pg_restore"), "PostgreSQL's client tools are needed"
    dump = tmp_path / "stampbook.dump"
    with scratch_database("postgresql", POSTGRES_ADMIN_URL) as live:
        key, _ = asyncio.run(new_key(live))
        card = asyncio.run(
            call(live, key, "POST", "card/create", json={"cardNm": "Tea", "maxStamps": 5})
        )
        today = date.today()
        stamp_idx = asyncio.run(
            call(
                live,
                key,
                "POST",
                "create",
                json={
                    "cardIdx": card,
                    "strtYmd": today.isoformat(),
                    "endYmd": (today + timedelta(days=9)).isoformat(),
                    "userNm": "김민지",
                },
            )
        )
        asyncio.run(call(live, key, "PUT", "add", json={"stampIdx": stamp_idx}))
        done = stampbook(live, "backup", str(dump))
        assert done.returncode == 0, done.stderr
        assert "pg_dump custom format" in done.stdout
    # The live database is gone; the dump is all there is. The restore as
    # docs/deploy.md writes it (credentials from the environment, as there).
    restored = subprocess.run(
        [
            "pg_restore",
            "--no-owner",
            "--exit-on-error",
            "--dbname",
            pg_dump_environment(fresh_database)["PGDATABASE"],
            str(dump),
        ],
        env={**os.environ, **pg_dump_environment(fresh_database)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert restored.returncode == 0, restored.stderr
    # The restored schema is at head already: the upgrade is a no-op there.
    assert stampbook(fresh_database, "db", "upgrade").returncode == 0
    stamp = asyncio.run(
        call(fresh_database, key, "GET", "validate", params={"stampIdx": stamp_idx})
    )
    assert (stamp["stampIdx"], stamp["stamps"], stamp["userNm"]) == (stamp_idx, 1, "김민지")
    history = asyncio.run(
        call(fresh_database, key, "GET", "history", params={"stampIdx": stamp_idx})
    )
    assert [e["action"] for e in history["items"]] == ["ADD", "CREATE"]
    # New ids continue after the restored ones (the sequences came back too).
    second = asyncio.run(
        call(
            fresh_database,
            key,
            "POST",
            "create",
            json={"cardIdx": card, "strtYmd": today.isoformat(), "endYmd": today.isoformat()},
        )
    )
    assert isinstance(second, int) and second > stamp_idx


def test_pg_dump_gets_the_credentials_and_tls_mode_through_the_environment() -> None:
    """Never on its command line, where any user's ``ps`` would show the password."""
    url = "postgresql://shop:s3cr%40t@db.internal:5433/stamps?sslmode=verify-full"
    assert pg_dump_environment(url) == {
        "PGHOST": "db.internal",
        "PGPORT": "5433",
        "PGUSER": "shop",
        "PGPASSWORD": "s3cr@t",
        "PGDATABASE": "stamps",
        "PGSSLMODE": "verify-full",
    }
    assert pg_dump_environment("postgresql://127.0.0.1/x?ssl=require")["PGSSLMODE"] == "require"


def test_a_dump_that_fails_says_why_and_leaves_no_file(tmp_path: Path) -> None:
    missing = f"{POSTGRES_ADMIN_URL.rpartition('/')[0]}/stampbook_no_such_{secrets.token_hex(4)}"
    dump = tmp_path / "never.dump"
    done = stampbook(missing, "backup", str(dump))
    assert done.returncode == 1
    assert "pg_dump failed" in done.stderr and "does not exist" in done.stderr
    assert list(tmp_path.iterdir()) == []
