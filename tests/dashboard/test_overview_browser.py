"""The owner's journey through the numbers in a real browser (Playwright,
Debian's Chromium, a real server on 127.0.0.1, JavaScript off): after a day
at the counter, the Overview shows the stamps, and Export downloads the CSV.
Screenshots at 390×844 and 1280×800 in tests/artifacts/."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import new_key
from tests.dashboard.conftest import PASSWORD, add_user
from tests.page.test_browser import DESKTOP, PHONE, Phone, Seeder, browser, server

pytestmark = pytest.mark.browser
__all__ = ["browser", "server"]  # the stamp page's fixtures, reused


@pytest.fixture(scope="module")
def owner(server: str, sqlite_url: str) -> Iterator[tuple[str, Seeder]]:
    """A fresh account on the real server: its owner's email, and its API."""
    key, account_idx = asyncio.run(new_key(sqlite_url))
    email = asyncio.run(add_user(sqlite_url, account_idx, "owner"))
    seeder = Seeder(server, key)
    yield email, seeder
    seeder.http.close()


def _shoot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"dashboard-{name}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(artifacts / f"dashboard-{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)


def test_owner_sees_the_days_stamps_and_downloads_the_csv(
    owner: tuple[str, Seeder], browser: Browser, server: str, artifacts: Path
) -> None:
    email, seeder = owner
    seeder.stamp(stamps=0)  # a card and a customer
    listed = seeder.http.get("/api/stamp/v1/list").json()["result"]["items"]
    stamp_idx = listed[0]["stampIdx"]
    for _ in range(4):
        seeder.ok("PUT", "add", {"stampIdx": stamp_idx})
    seeder.ok("PUT", "remove", {"stampIdx": stamp_idx})

    phone = Phone(browser, server)
    try:
        page = phone.page
        page.goto(f"{server}/dashboard/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto(f"{server}/dashboard/overview")
        expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
        tiles = page.locator(".tiles")
        expect(tiles.locator(".tile", has_text="Stamps added").locator("dd")).to_have_text("4")
        expect(tiles.locator(".tile", has_text="Stamps taken back").locator("dd")).to_have_text("1")
        today = page.locator("table.numbers").first.locator("tbody tr").last
        expect(today.locator("td")).to_have_text(["4", "1", "0", "0", "1"])
        expect(page.locator("svg.bars rect")).not_to_have_count(0)
        _shoot(page, artifacts, "overview")

        page.get_by_role("link", name="Export").click()
        expect(page.get_by_role("heading", name="Export", exact=True)).to_be_visible()
        _shoot(page, artifacts, "export")
        history = page.locator("form", has_text="History (ledger)")
        with page.expect_download() as download_info:
            history.get_by_role("button", name="Download CSV").click()
        download = download_info.value
        assert download.suggested_filename.startswith("events-")
        body = Path(download.path()).read_bytes()
        assert body.startswith(b"\xef\xbb\xbf")
        lines = body[3:].decode().splitlines()
        assert lines[0].startswith("eventIdx,stampIdx,cardIdx,userId,action")
        assert [line.split(",")[4] for line in lines[1:]] == ["CREATE"] + ["ADD"] * 4 + ["REMOVE"]

        page.goto(f"{server}/dashboard/overview?lang=ko")
        expect(page.get_by_role("heading", name="개요", exact=True)).to_be_visible()
        _shoot(page, artifacts, "overview-ko")
    finally:
        phone.close()
