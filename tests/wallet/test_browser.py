"""The stamp page with the wallets' buttons, in Debian's Chromium (JavaScript
off), at phone and desktop size; the Apple button downloads the pass."""

from __future__ import annotations

import asyncio
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, expect

from stampbook.app import create_app
from tests.conftest import new_key, suite_settings
from tests.page.test_browser import Phone, Seeder, _free_port, browser
from tests.wallet.pki import ApplePki, GoogleAccount

pytestmark = pytest.mark.browser

__all__ = ["browser"]


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
