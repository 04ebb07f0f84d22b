"""The CLI forms that are part of the contract, run as a user would run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from stampbook.app import create_app
from stampbook.config import Settings

STAMPBOOK = [sys.executable, "-m", "stampbook.cli"]


def run(database_url: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STAMPBOOK_DATABASE_URL": database_url}
    return subprocess.run(
        [*STAMPBOOK, *args], env=env, capture_output=True, text=True, timeout=60, cwd=cwd
    )


def ok(database_url: str, *args: str, cwd: Path | None = None) -> str:
    result = run(database_url, *args, cwd=cwd)
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


async def request(app: FastAPI, key: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as http,
    ):
        return await http.get(path, headers={"Authorization": f"APIKey {key}"})


@pytest.mark.slow
async def test_a_fresh_database_is_migrated_and_served_with_a_new_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert "head" in ok(url, "db", "upgrade")
    key = ok(url, "apikey", "create", "--account", "cafe").strip().splitlines()[-1]
    assert key.startswith("sk_") and len(key) > 40
    card_idx = ok(url, "card", "create", "--account", "cafe", "--name", "Tea", "--max-stamps", "8")
    assert card_idx.strip().splitlines()[-1].isdigit()
    assert "Tea" in ok(url, "card", "list", "--account", "cafe")
    assert "cafe" in ok(url, "account", "list")

    app = create_app(Settings(database_url=url, rate_limit="off"))
    response = await request(app, key, "/api/stamp/v1/card/list")
    assert response.json()["result"]["items"][0]["cardNm"] == "Tea"

    listing = ok(url, "apikey", "list", "--account", "cafe")
    assert key[:11] in listing and key not in listing
    key_idx = listing.splitlines()[1].split()[0]
    assert "revoked" in ok(url, "apikey", "revoke", key_idx)
    assert run(url, "apikey", "revoke", key_idx).returncode == 1
    response = await request(app, key, "/api/stamp/v1/card/list")
    assert response.status_code == 401


@pytest.mark.slow
def test_apikey_create_prints_the_key_alone_on_the_last_line(database_url: str) -> None:
    out = ok(database_url, "apikey", "create", "--account", "cli-last-line")
    last = out.rstrip("\n").splitlines()[-1]
    assert last == last.strip() and last.startswith("sk_") and " " not in last


@pytest.mark.slow
def test_card_create_needs_an_existing_account(database_url: str) -> None:
    result = run(database_url, "card", "create", "--account", "nobody-here", "--name", "x",
                 "--max-stamps", "5")  # fmt: skip
    assert result.returncode == 1 and "no account" in result.stderr


@pytest.mark.slow
def test_demo_prints_a_working_key_and_page_and_keeps_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    ok(url, "db", "upgrade")
    first = ok(url, "demo", cwd=tmp_path)
    assert "API key" in first and "/s/" in first and "curl" in first
    second = ok(url, "demo", cwd=tmp_path)
    key_line = next(line for line in first.splitlines() if "API key" in line)
    assert key_line in second  # the same demo, not a new one each run
    # A dashboard owner, created once: the same sign-in printed on every run.
    owner_line = next(line for line in first.splitlines() if "Dashboard" in line)
    assert "/dashboard/" in owner_line and "owner@demo.example.com / " in owner_line
    assert owner_line in second
    assert (tmp_path / ".stampbook-demo").stat().st_mode & 0o077 == 0


@pytest.mark.slow
def test_purge_reports_what_it_removed(database_url: str) -> None:
    out = ok(database_url, "purge")
    assert "expired idempotency keys" in out and "old webhook messages" in out
