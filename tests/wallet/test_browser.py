"""The stamp page with the wallets' buttons, in Debian's Chromium (JavaScript
off), at phone and desktop size; the Apple button downloads the pass."""

from __future__ import annotations

import asyncio
import threading
import time
import zipfile
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn
from playwright.sync_api import Browser, expect

from stampbook.app import create_app
from tests.conftest import new_key, suite_settings
from tests.dashboard.conftest import PASSWORD, add_user
from tests.page.test_browser import Phone, Seeder, _free_port, browser
from tests.wallet.pki import ApplePki, GoogleAccount

pytestmark = pytest.mark.browser

__all__ = ["browser"]
T = TypeVar("T")


@pytest.fixture(scope="module")
def wallet_server(
    sqlite_url: str, apple_pki: ApplePki, google_account: GoogleAccount
) -> Iterator[str]:
    """A real uvicorn serving an app with both wallets configured."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = suite_settings(
        sqlite_url,
        public_url=base,
        **apple_pki.settings(),
        **google_account.settings(),
        wallet_workers_enabled=False,
        login_slow_seconds=0,
    )
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join(timeout=10)


def off_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end on a thread of its own (Playwright's sync API
    may already run an event loop on this one)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


@pytest.fixture(scope="module")
def staff_desk(wallet_server: str, sqlite_url: str) -> tuple[str, int]:
    """A staff member's email and a stamp of their account (made before the browser starts)."""
    key, account_idx = off_loop(new_key(sqlite_url))
    email = off_loop(add_user(sqlite_url, account_idx, "staff"))
    seed = Seeder(wallet_server, key)
    try:
        seed.stamp(stamps=3)
        listed = seed.http.get("/api/stamp/v1/list", params={"limit": 1}).json()
        return email, int(listed["result"]["items"][0]["stampIdx"])
    finally:
        seed.http.close()


@pytest.fixture(scope="module")
def stamp_url(wallet_server: str, sqlite_url: str) -> str:
    """A stamp with 4 of 10 collected, on a fresh account (made before the browser starts)."""
    key, _ = asyncio.run(new_key(sqlite_url))
    seed = Seeder(wallet_server, key)
    try:
        return seed.stamp(stamps=4)
    finally:
        seed.http.close()


def test_the_stamp_page_offers_the_pass_in_both_wallets(
    stamp_url: str, wallet_server: str, browser: Browser, artifacts: Path, tmp_path: Path
) -> None:
    url = stamp_url
    phone = Phone(browser, wallet_server)
    page = phone.page
    page.goto(url)
    apple = page.get_by_role("link", name="Add to Apple Wallet")
    google = page.get_by_role("link", name="Save to Google Wallet")
    expect(apple).to_be_visible()
    expect(google).to_be_visible()
    token = url.rsplit("/", 1)[1]
    expect(google).to_have_attribute("href", f"/s/{token}/google-wallet")
    phone.page.screenshot(path=str(artifacts / "wallet-buttons-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    phone.page.screenshot(path=str(artifacts / "wallet-buttons-desktop.png"), full_page=True)

    with page.expect_download() as download:
        apple.click()
    saved = tmp_path / "card.pkpass"
    download.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert {"pass.json", "manifest.json", "signature"} <= set(archive.namelist())
    phone.close()

    korean = Phone(browser, wallet_server, locale="ko-KR")
    korean.page.goto(url)
    expect(korean.page.get_by_role("link", name="Apple 지갑에 추가")).to_be_visible()
    expect(korean.page.get_by_role("link", name="Google 월렛에 저장")).to_be_visible()
    korean.page.screenshot(path=str(artifacts / "wallet-buttons-ko-phone.png"), full_page=True)
    korean.close()


def test_the_dashboard_stamp_page_offers_the_passes(
    staff_desk: tuple[str, int], wallet_server: str, browser: Browser, artifacts: Path
) -> None:
    email, stamp_idx = staff_desk
    desk = Phone(browser, wallet_server)
    page = desk.page
    page.goto(f"{wallet_server}/dashboard/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    page.goto(f"{wallet_server}/dashboard/stamps/{stamp_idx}")
    apple = page.get_by_role("link", name="Apple Wallet pass")
    expect(apple).to_be_visible()
    expect(page.get_by_role("link", name="Google Wallet pass")).to_be_visible()
    assert (apple.get_attribute("href") or "").endswith("/pass.pkpass")
    page.screenshot(path=str(artifacts / "wallet-dashboard-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.screenshot(path=str(artifacts / "wallet-dashboard-desktop.png"), full_page=True)
    desk.close()
