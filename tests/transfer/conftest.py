"""Fixtures of the import/export tests: a database of their own per module
(imports move the id sequences far ahead, which the rest of the suite need
not see), the CLI bound to it, and a reader of the ledger."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import func, select
from typer.testing import CliRunner

from stampbook.accounts import service as accounts
from stampbook.cli import app
from stampbook.db.schema import stamp, stamp_event
from stampbook.kit.db import Database
from tests.conftest import DATABASES, POSTGRES_ADMIN_URL
from tests.servers import scratch_database

PUBLIC_URL = "https://stamps.example.test"
_ranges = itertools.count(1)


@pytest.fixture(scope="module", params=DATABASES)
def transfer_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A freshly migrated database shared by one test module."""
    with scratch_database(request.param, POSTGRES_ADMIN_URL) as url:
        yield url


@pytest.fixture
def base() -> int:
    """A range of ids of this test's own (base + 1 .. base + 999)."""
    return 100_000 + next(_ranges) * 1000


class Cli:
    """``stampbook`` on one database, run in-process as a user would type it."""

    def __init__(self, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("STAMPBOOK_DATABASE_URL", database_url)
        monkeypatch.setenv("STAMPBOOK_PUBLIC_URL", PUBLIC_URL)
        self.database_url = database_url
        self.runner = CliRunner()

    def run(self, *args: str) -> Result:
        """The command's result, whatever its exit code."""
        return self.runner.invoke(app, list(args))

    def ok(self, *args: str) -> str:
        """The command's stdout; it must succeed."""
        result = self.run(*args)
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return result.stdout

    def account(self) -> str:
        """A new account (made by creating its first key)."""
        name = f"shop-{uuid.uuid4().hex[:10]}"
        self.ok("apikey", "create", "--account", name)
        return name

    def export(self, account: str) -> list[dict[str, Any]]:
        """The account's stamps as exported (JSON Lines), by stampIdx."""
        out = self.ok("export", "--account", account)
        return sorted((json.loads(line) for line in out.splitlines()), key=lambda s: s["stampIdx"])


@pytest.fixture
def cli(transfer_url: str, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI on the module's database."""
    return Cli(transfer_url, monkeypatch)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    """``rows`` as a JSON Lines file."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def stamp_row(stamp_idx: int, card_idx: int, **fields: Any) -> dict[str, Any]:
    """A stamp object as the hosted service's validate returns it."""
    return {
        "stampIdx": stamp_idx,
        "domain": "https://hosted.example.com",
        "cardIdx": card_idx,
        "cardNm": "Accumulate 10 Americanos",
        "cardTtl": "Collect 10 stamps to get one free Americano.",
        "stamps": 4,
        "maxStamps": 10,
        "stampUrl": f"https://hosted.example.com/stamp/{stamp_idx}",
        "url": "https://myshop.example.com",
        "strtYmd": "2025-01-01",
        "endYmd": "2027-12-31",
        "onsiteYn": "Y",
        "onsitePwd": "123456",
        "memo": None,
        "activeYn": "Y",
        "userId": f"user{stamp_idx}",
        "userNm": "Kim",
        "userPhnno": "010-1234-5678",
        "userEml": "kim@example.com",
        "userEtc1": None,
        "userEtc2": None,
        "stampImgUrl": "https://hosted.example.com/static/stamp/1.webp",
        "regYmdt": "2025-10-30 05:11:35",
        "payloadVersion": "v1",
        **fields,
    }


def ledger(database_url: str, account: str) -> dict[int, tuple[int, int, set[str]]]:
    """Per stamp of ``account``: its count, the sum of its ledger's changes, and
    the ledger's sources."""

    async def read() -> dict[int, tuple[int, int, set[str]]]:
        database = Database(database_url, pool_size=1)
        try:
            async with database.read() as conn:
                found = await accounts.find_account(conn, name=account)
                assert found is not None
                owner = found["account_idx"]
                counts = await conn.execute(
                    select(stamp.c.stamp_idx, stamp.c.stamps).where(stamp.c.account_idx == owner)
                )
                events = await conn.execute(
                    select(
                        stamp_event.c.stamp_idx,
                        stamp_event.c.source,
                        func.sum(stamp_event.c.stamps_after - stamp_event.c.stamps_before),
                    )
                    .where(stamp_event.c.account_idx == owner)
                    .group_by(stamp_event.c.stamp_idx, stamp_event.c.source)
                )
                found_rows: dict[int, tuple[int, int, set[str]]] = {
                    int(idx): (int(count), 0, set()) for idx, count in counts
                }
                for idx, source, total in events:
                    count, summed, sources = found_rows[int(idx)]
                    found_rows[int(idx)] = (count, summed + int(total), sources | {source})
                return found_rows
        finally:
            await database.dispose()

    return asyncio.run(read())
