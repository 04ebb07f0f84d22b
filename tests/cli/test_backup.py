"""``stampbook backup PATH`` on a live SQLite database: a whole, sound copy that
agrees with its own ledger, taken while a real server goes on adding stamps.

(PostgreSQL's dump and restore: tests/cli/test_backup_postgresql.py.)
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from stampbook.db.backup import BackupError, backup_sqlite, sqlite_file
from tests.conftest import POSTGRES_ADMIN_URL, new_key
from tests.servers import RealServer, real_server, scratch_database

pytestmark = pytest.mark.slow

STAMPBOOK = [sys.executable, "-m", "stampbook.cli"]
STAMPS = 20
ADD_PACE_SECONDS = 0.01  # at most 100 adds a second: 20 s of adds before the cards are full


def stampbook(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI as an operator would, on ``database_url``."""
    env = {**os.environ, "STAMPBOOK_DATABASE_URL": database_url}
    return subprocess.run(
        [*STAMPBOOK, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


class Shop:
    """A real server with an account holding ``STAMPS`` stamps on one card."""

    def __init__(self, server: RealServer, key: str) -> None:
        self.server = server
        self.http = httpx.Client(
            base_url=f"{server.base_url}/api/stamp/v1/",
            headers={"Authorization": f"APIKey {key}"},
            timeout=30,
        )
        card = self.ok("POST", "card/create", json={"cardNm": "Coffee", "maxStamps": 99})
        today = date.today()
        span = {"strtYmd": today.isoformat(), "endYmd": (today + timedelta(days=30)).isoformat()}
        self.stamps = [
            int(self.ok("POST", "create", json={"cardIdx": card, **span})) for _ in range(STAMPS)
        ]

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call that must succeed; its result."""
        body = self.http.request(method, path, **kwargs).json()
        assert body["code"] == 0, body
        return body["result"]

    def add(self, n: int) -> None:
        """Add a stamp to the stamp ``n`` (round robin over the card's stamps)."""
        self.ok("PUT", "add", json={"stampIdx": self.stamps[n % STAMPS]})


@pytest.fixture
def shop() -> Iterator[Shop]:
    """A scratch SQLite database served by a real ``stampbook serve``."""
    with scratch_database("sqlite", POSTGRES_ADMIN_URL) as url:
        key, _ = asyncio.run(new_key(url))
        with real_server(url, workers=1) as server:
            shop = Shop(server, key)
            yield shop
            shop.http.close()


def ledger_disagreements(path: Path) -> list[tuple[int, int, int]]:
    """(stampIdx, stamps, ledger sum) of every stamp whose count is not the sum of
    its ledger's changes; empty when the database agrees with itself."""
    with closing(sqlite3.connect(path)) as db:
        return db.execute(
            """
            SELECT s.stamp_idx, s.stamps, COALESCE(SUM(e.stamps_after - e.stamps_before), 0)
            FROM stamp s LEFT JOIN stamp_event e ON e.stamp_idx = s.stamp_idx
            GROUP BY s.stamp_idx, s.stamps
            HAVING s.stamps != COALESCE(SUM(e.stamps_after - e.stamps_before), 0)
            """
        ).fetchall()


def totals(path: Path) -> tuple[str, int, int]:
    """(integrity_check's verdict, stamps counted on the cards, ADD events)."""
    with closing(sqlite3.connect(path)) as db:
        verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
        stamps = db.execute("SELECT COALESCE(SUM(stamps), 0) FROM stamp").fetchone()[0]
        adds = db.execute("SELECT count(*) FROM stamp_event WHERE action = 'ADD'").fetchone()[0]
    return verdict, stamps, adds


def test_a_backup_taken_while_the_server_adds_stamps_is_sound_and_agrees_with_its_ledger(
    shop: Shop, tmp_path: Path
) -> None:
    added = 0
    stop = threading.Event()
    failures: list[BaseException] = []

    def keep_adding() -> None:
        nonlocal added
        try:
            # Paced: the cards hold 20 x 99 stamps, which an unpaced writer
            # filled before a backup slowed down by a busy machine ended.
            while not stop.wait(ADD_PACE_SECONDS):
                shop.add(added)
                added += 1
        except BaseException as exc:  # reported by the test below
            failures.append(exc)

    writer = threading.Thread(target=keep_adding)
    writer.start()
    try:
        while added < 30 and writer.is_alive():
            threading.Event().wait(0.01)
        copy = tmp_path / "backup.db"
        # One page per step: the copy takes many steps, with adds committed between them.
        done = stampbook(shop.server.database_url, "backup", str(copy), "--pages", "1")
        at_backup_end = added
        while added < at_backup_end + 30 and writer.is_alive():
            threading.Event().wait(0.01)
    finally:
        stop.set()
        writer.join(timeout=60)
    assert not failures, failures
    assert done.returncode == 0, done.stderr + done.stdout
    assert f"backed up {sqlite_file(shop.server.database_url)} to {copy}" in done.stdout

    verdict, stamps, adds = totals(copy)
    assert verdict == "ok"
    assert ledger_disagreements(copy) == []
    assert stamps == adds  # every stamp started at 0 and only gained adds
    assert 30 <= stamps < added  # the adds after the backup are not in it
    assert [p.name for p in tmp_path.iterdir()] == ["backup.db"]  # nothing partial left
    live = sqlite_file(shop.server.database_url)
    assert totals(live) == ("ok", added, added)
    assert ledger_disagreements(live) == []


def test_the_copy_is_the_database_as_the_backup_began_and_writes_go_on_meanwhile(
    shop: Shop, tmp_path: Path
) -> None:
    for n in range(5):
        shop.add(n)
    steps: list[tuple[int, int]] = []

    def midway(copied: int, total: int) -> None:
        steps.append((copied, total))
        if len(steps) == 2:
            shop.add(5)  # answered while the backup holds its snapshot

    copy = tmp_path / "snapshot.db"
    live = sqlite_file(shop.server.database_url)
    pages = backup_sqlite(live, copy, pages_per_step=4, progress=midway)
    assert len(steps) > 2 and steps[-1] == (pages, pages)
    # The copy never restarted: its progress only went forward.
    assert [copied for copied, _ in steps] == sorted(copied for copied, _ in steps)
    assert totals(copy) == ("ok", 5, 5)
    assert totals(live) == ("ok", 6, 6)


def test_a_backup_never_overwrites_and_leaves_no_partial_file(shop: Shop, tmp_path: Path) -> None:
    taken = tmp_path / "monday.db"
    taken.write_text("last week's backup")
    done = stampbook(shop.server.database_url, "backup", str(taken), "--quiet")
    assert done.returncode == 1
    assert f"{taken} exists" in done.stderr
    assert taken.read_text() == "last week's backup"
    missing = tmp_path / "nothing-here.db"
    with pytest.raises(BackupError, match="no database file"):
        backup_sqlite(missing, tmp_path / "copy.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["monday.db"]
