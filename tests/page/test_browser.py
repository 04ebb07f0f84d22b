"""The stamp page in a real browser: Playwright driving Debian's Chromium against
a real server on 127.0.0.1, with JavaScript switched off (the page needs none).

Each test leaves screenshots at phone (390×844) and desktop (1280×800) size in
tests/artifacts/. A missing Chromium fails these tests, never skips them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from stampbook.app import create_app
from stampbook.config import Settings
from tests.conftest import new_key

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("STAMPBOOK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
REFUSED_STATUS = "Failed to load resource: the server responded with a status of 4"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(sqlite_url: str) -> Iterator[str]:
    """A real uvicorn serving the app on a free port; yields its base URL."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=sqlite_url, public_url=base, rate_limit="off", dispatcher_enabled=False
    )
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uvicorn_server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start", pytrace=False)
        time.sleep(0.05)
    yield base
    uvicorn_server.should_exit = True
    thread.join(timeout=10)


class Seeder:
    """Creates cards and stamps through the real server's API."""

    def __init__(self, base: str, key: str) -> None:
        self.http = httpx.Client(base_url=base, headers={"Authorization": f"APIKey {key}"})

    def ok(self, method: str, path: str, body: dict[str, Any]) -> Any:
        response = self.http.request(method, f"/api/stamp/v1/{path}", json=body)
        envelope = response.json()
        assert envelope["code"] == 0, envelope
        return envelope["result"]

    def stamp(self, stamps: int = 0, **card: Any) -> str:
        """A stamp on a new card with ``stamps`` already collected; returns its page URL."""
        card_body = {
            "cardNm": "Bean There Coffee",
            "cardTtl": "Collect 10 stamps for a free americano",
            "maxStamps": 10,
            "url": "https://shop.example.com/",
            **card,
        }
        card_idx = self.ok("POST", "card/create", card_body)
        today = date.today()
        stamp_idx = self.ok(
            "POST",
            "create",
            {
                "cardIdx": card_idx,
                "strtYmd": (today - timedelta(days=7)).isoformat(),
                "endYmd": (today + timedelta(days=358)).isoformat(),
                "userNm": "Kim Minji",
                "userPhnno": "010-1234-5678",
            },
        )
        if stamps:
            self.ok("PUT", "update", {"stampIdx": stamp_idx, "stamps": stamps})
        page = self.http.get("/api/stamp/v1/validate", params={"stampIdx": stamp_idx})
        return str(page.json()["result"]["stampUrl"])


@pytest.fixture(scope="module")
def seed(server: str, sqlite_url: str) -> Iterator[Seeder]:
    """A fresh account on the real server."""
    key, _ = asyncio.run(new_key(sqlite_url))
    seeder = Seeder(server, key)
    yield seeder
    seeder.http.close()


@contextmanager
def launched_chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless; its absence is a failure with a clear message."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"Chromium is required for the browser tests and is not at {CHROMIUM}: "
            "run `make browser` (apt-get install chromium) or set STAMPBOOK_CHROMIUM.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium for this module's tests."""
    with launched_chromium() as launched:
        yield launched


class Phone:
    """A fresh browser profile at phone size, JavaScript off, watching for trouble."""

    def __init__(self, browser: Browser, server: str, locale: str = "en-US") -> None:
        self.server = server
        self.context: BrowserContext = browser.new_context(
            viewport=PHONE, java_script_enabled=False, locale=locale
        )
        self.page: Page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", self._check_console)
        self.page.on("request", self._check_request)

    def _check_console(self, message: Any) -> None:
        # CSP violations ("Refused to load …") are errors; refusals the page
        # answers on purpose (403 wrong PIN, 404) are logged too and are fine.
        if message.type == "error" and not message.text.startswith(REFUSED_STATUS):
            self.problems.append(message.text)

    def _check_request(self, request: Any) -> None:
        # No CDN, font or script: everything comes from our own server.
        if not request.url.startswith(self.server):
            self.problems.append(f"external request {request.url}")

    def shoot(self, artifacts: Path, name: str) -> None:
        """Save the page at phone size and at desktop size."""
        self.page.screenshot(path=str(artifacts / f"page-{name}-phone.png"), full_page=True)
        self.page.set_viewport_size(DESKTOP)
        self.page.screenshot(path=str(artifacts / f"page-{name}-desktop.png"), full_page=True)
        self.page.set_viewport_size(PHONE)

    def close(self) -> None:
        """Close the profile; no CSP violation or external request may have happened."""
        self.context.close()
        assert self.problems == []


@pytest.fixture
def phone(browser: Browser, server: str) -> Iterator[Phone]:
    """A fresh phone; checked for console errors and external requests at the end."""
    opened = Phone(browser, server)
    yield opened
    opened.close()


def test_customer_chooses_a_pin_and_enters_it_later(
    seed: Seeder, browser: Browser, server: str, phone: Phone, artifacts: Path
) -> None:
    url = seed.stamp(stamps=7)
    page = phone.page
    page.goto(url)
    expect(page.get_by_role("heading", name="Bean There Coffee")).to_be_visible()
    expect(page.get_by_text("7 of 10 stamps collected")).to_have_count(1)
    expect(page.locator(".slot.filled")).to_have_count(7)
    expect(page.get_by_text("3 more to your reward")).to_be_visible()
    expect(page.get_by_role("link", name="Visit the shop")).to_have_attribute(
        "href", "https://shop.example.com/"
    )
    expect(page.get_by_text("Kim Minji")).to_have_count(0)
    phone.shoot(artifacts, "first-visit")

    page.get_by_label("PIN (4–6 digits)").fill("482913")
    page.get_by_label("PIN again").fill("482913")
    page.get_by_role("button", name="Save PIN").click()
    expect(page.get_by_role("status")).to_have_text("Your PIN is saved.")
    expect(page.get_by_text("Kim Minji")).to_be_visible()
    expect(page.get_by_text("010-1234-5678")).to_be_visible()
    phone.shoot(artifacts, "pin-set")

    page.reload()
    expect(page.get_by_text("Kim Minji")).to_be_visible()

    later = Phone(browser, server)
    try:
        later.page.goto(url)
        expect(later.page.get_by_role("heading", name="Enter your PIN")).to_be_visible()
        expect(later.page.get_by_text("Kim Minji")).to_have_count(0)
        # Keyboard only: Tab into the field, type, press Enter.
        later.page.get_by_label("PIN (4–6 digits)").focus()
        later.page.keyboard.type("482913")
        later.page.keyboard.press("Enter")
        expect(later.page.get_by_text("Kim Minji")).to_be_visible()
        later.shoot(artifacts, "pin-entered")
    finally:
        later.close()


def test_five_wrong_pins_lock_the_page(
    seed: Seeder, browser: Browser, server: str, phone: Phone, artifacts: Path
) -> None:
    url = seed.stamp(stamps=2)
    phone.page.goto(url)
    phone.page.get_by_label("PIN (4–6 digits)").fill("2468")
    phone.page.get_by_label("PIN again").fill("2468")
    phone.page.get_by_role("button", name="Save PIN").click()
    expect(phone.page.get_by_text("Kim Minji")).to_be_visible()

    stranger = Phone(browser, server)
    try:
        page = stranger.page
        page.goto(url)
        for left in (4, 3, 2, 1):
            page.get_by_label("PIN (4–6 digits)").fill("1111")
            page.get_by_role("button", name="Show my details").click()
            expect(page.get_by_role("alert")).to_have_text(f"The PIN is wrong. {left} tries left.")
        page.get_by_label("PIN (4–6 digits)").fill("1111")
        page.get_by_role("button", name="Show my details").click()
        expect(page.get_by_role("alert")).to_have_text("Too many wrong PINs. Try again in 15 min.")
        page.goto(url)
        expect(page.locator('[data-lock="pin"]')).to_be_visible()
        expect(page.get_by_label("PIN (4–6 digits)")).to_have_count(0)
        expect(page.get_by_text("Kim Minji")).to_have_count(0)
        stranger.shoot(artifacts, "pin-locked")
    finally:
        stranger.close()


def test_staff_stamp_on_site_then_redeem_the_complete_card(
    seed: Seeder, phone: Phone, artifacts: Path
) -> None:
    url = seed.stamp(stamps=8, onsiteYn="Y", onsitePwd="4321")
    page = phone.page
    page.goto(url)
    page.get_by_role("link", name="Staff").click()
    expect(page.get_by_role("button", name="Add one stamp")).to_be_visible()

    page.get_by_label("On-site password").fill("0000")
    page.get_by_role("button", name="Add one stamp").click()
    expect(page.get_by_role("alert")).to_have_text("The on-site password is missing or wrong.")
    expect(page.locator(".count-now")).to_have_text("8")
    phone.shoot(artifacts, "staff-wrong-password")

    page.get_by_label("On-site password").fill("4321")
    page.get_by_role("button", name="Add one stamp").click()
    expect(page.get_by_role("status")).to_have_text("Stamp added.")
    expect(page.locator(".count-now")).to_have_text("9")
    expect(page.get_by_text("One more to your reward")).to_be_visible()

    page.get_by_role("link", name="Staff").click()
    page.get_by_label("On-site password").fill("4321")
    page.get_by_label("On-site password").press("Enter")
    expect(page.locator(".count-now")).to_have_text("10")
    expect(page.locator("[data-state]")).to_have_attribute("data-state", "complete")
    phone.shoot(artifacts, "complete")

    page.get_by_role("link", name="Staff").click()
    expect(page.get_by_role("button", name="Add one stamp")).to_have_count(0)
    page.get_by_label("On-site password").fill("4321")
    page.get_by_role("button", name="Hand over the reward").click()
    expect(page.get_by_role("status")).to_have_text("Reward handed over.")
    expect(page.locator("[data-state]")).to_have_text("Reward used")
    phone.shoot(artifacts, "reward-used")


def test_five_wrong_staff_passwords_lock_on_site_actions(
    seed: Seeder, phone: Phone, artifacts: Path
) -> None:
    url = seed.stamp(stamps=3, onsiteYn="Y", onsitePwd="4321")
    page = phone.page
    page.goto(url + "/staff")
    for _ in range(5):
        page.get_by_label("On-site password").fill("9999")
        page.get_by_role("button", name="Add one stamp").click()
        expect(page.get_by_role("alert")).to_have_text("The on-site password is missing or wrong.")
    expect(page.locator('[data-lock="onsite"]')).to_have_text(
        "On-site actions are locked. Try again in 15 min."
    )
    expect(page.get_by_label("On-site password")).to_have_count(0)
    expect(page.locator(".count-now")).to_have_text("3")
    phone.shoot(artifacts, "staff-locked")


def test_korean_from_the_browser_and_the_switch(
    seed: Seeder, browser: Browser, server: str, artifacts: Path
) -> None:
    url = seed.stamp(stamps=4, onsiteYn="Y", onsitePwd="4321")
    korean = Phone(browser, server, locale="ko-KR")
    try:
        page = korean.page
        page.goto(url)
        expect(page.locator("html")).to_have_attribute("lang", "ko")
        expect(page.get_by_text("보상까지 6개 남았습니다")).to_be_visible()
        expect(page.get_by_role("link", name="직원용")).to_be_visible()
        korean.shoot(artifacts, "korean")
        page.get_by_role("link", name="English").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.get_by_text("6 more to your reward")).to_be_visible()
        page.goto(url)  # the choice is remembered
        expect(page.locator("html")).to_have_attribute("lang", "en")
    finally:
        korean.close()


def test_unknown_address_is_a_plain_not_found_page(
    server: str, phone: Phone, artifacts: Path
) -> None:
    response = phone.page.goto(f"{server}/s/1")
    assert response is not None and response.status == 404
    expect(phone.page.get_by_role("heading", name="Page not found")).to_be_visible()
    phone.shoot(artifacts, "not-found")
