"""Receipt codes in a real browser: Playwright driving Debian's Chromium against
a real server on 127.0.0.1.

A phone without a cookie (JavaScript off) scans a code, gets a card with the
stamp, scans a second code and adds to the same card in one tap; reopening
either code says it was used. The dashboard's Till replaces its code by
itself once a phone claims it: with JavaScript (htmx polling) and without
(meta refresh). Screenshots at 390×844 (and the Till at 1280×800) go to
tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import new_key
from tests.dashboard.conftest import PASSWORD, add_user
from tests.page import test_browser as page_browser
from tests.page.test_browser import DESKTOP, PHONE, Phone, Seeder

pytestmark = pytest.mark.browser

# The stamp page's real server and Chromium, shared by this module's tests.
server = page_browser.server
browser = page_browser.browser


@pytest.fixture(scope="module")
def shop(server: str, sqlite_url: str) -> Iterator[tuple[Seeder, str]]:
    """A fresh account on the real server, with a staff member for the dashboard."""
    key, account_idx = asyncio.run(new_key(sqlite_url))
    staff = asyncio.run(add_user(sqlite_url, account_idx, "staff"))
    seeder = Seeder(server, key)
    yield seeder, staff
    seeder.http.close()


def new_card(seeder: Seeder, name: str) -> int:
    return int(seeder.ok("POST", "card/create", {"cardNm": name, "maxStamps": 10}))


def new_code(seeder: Seeder, card_idx: int) -> str:
    return str(seeder.ok("POST", "code/create", {"cardIdx": card_idx})["url"])


def shoot(page: Page, artifacts: Path, name: str, *, desktop: bool = False) -> None:
    page.screenshot(path=str(artifacts / f"codes-{name}-phone.png"), full_page=True)
    if desktop:
        page.set_viewport_size(DESKTOP)
        page.screenshot(path=str(artifacts / f"codes-{name}-desktop.png"), full_page=True)
        page.set_viewport_size(PHONE)


def test_a_phone_gets_a_card_from_a_code_then_adds_a_second_in_one_tap(
    shop: tuple[Seeder, str], browser: Browser, server: str, artifacts: Path
) -> None:
    seeder, _ = shop
    card_idx = new_card(seeder, "Bean There Coffee")
    first, second = new_code(seeder, card_idx), new_code(seeder, card_idx)
    phone = Phone(browser, server)  # no cookie, JavaScript off
    page = phone.page

    page.goto(first)
    expect(page.get_by_role("heading", name="A stamp for Bean There Coffee")).to_be_visible()
    shoot(page, artifacts, "first-code")
    page.get_by_role("button", name="Get a card").click()
    expect(page).to_have_url(re.compile(r"/s/[A-Za-z0-9_-]+\?done=enrolled$"))
    expect(page.get_by_text("1 of 10 stamps collected")).to_have_count(1)
    expect(page.get_by_role("heading", name="Protect your card with a PIN")).to_be_visible()
    card_url = page.url.split("?")[0]
    shoot(page, artifacts, "new-card")

    page.goto(second)
    offer = page.get_by_role("button", name="Add 1 stamp to Bean There Coffee (1 / 10)?")
    expect(offer).to_be_visible()
    shoot(page, artifacts, "second-code")
    offer.click()  # one tap
    expect(page).to_have_url(f"{card_url}?done=code")
    expect(page.get_by_text("2 of 10 stamps collected")).to_have_count(1)
    expect(page.get_by_text("The code's stamps are on your card.")).to_be_visible()
    shoot(page, artifacts, "added")

    for used in (first, second):
        page.goto(used)
        expect(page.get_by_role("heading", name="Code already used")).to_be_visible()
        expect(
            page.get_by_role("link", name="Open your card: Bean There Coffee")
        ).to_have_attribute("href", card_url.removeprefix(server))
    shoot(page, artifacts, "used")
    phone.close()


def _sign_in(page: Page, server: str, email: str) -> None:
    page.goto(f"{server}/dashboard/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/login"))


@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-js"])
def test_the_till_replaces_its_code_after_a_phone_claims_it(
    shop: tuple[Seeder, str], browser: Browser, server: str, artifacts: Path, javascript: bool
) -> None:
    seeder, staff = shop
    card_idx = new_card(seeder, f"Till Coffee {'js' if javascript else 'plain'}")
    context = browser.new_context(viewport=PHONE, java_script_enabled=javascript)
    till = context.new_page()
    problems: list[str] = []
    till.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    _sign_in(till, server, staff)
    till.goto(f"{server}/dashboard/till")
    till.get_by_label("Card").select_option(str(card_idx))
    till.get_by_role("button", name="Show the code").click()
    section = till.locator("#till")
    expect(section).to_be_visible()
    expect(section.locator("svg")).to_be_visible()
    shown = section.get_attribute("data-code-url")
    assert shown and shown.startswith(f"{server}/c/")
    opened_at = till.url
    shoot(till, artifacts, f"till-{'js' if javascript else 'nojs'}", desktop=True)

    phone = Phone(browser, server)
    phone.page.goto(shown)
    phone.page.get_by_role("button", name="Get a card").click()
    expect(phone.page.get_by_text("1 of 10 stamps collected")).to_have_count(1)
    phone.close()

    # No reload by hand: the screen shows a new code within a few seconds.
    expect(section).not_to_have_attribute("data-code-url", shown, timeout=15_000)
    replaced = section.get_attribute("data-code-url")
    assert replaced and replaced.startswith(f"{server}/c/") and replaced != shown
    if javascript:
        assert till.url == opened_at  # swapped in place by htmx, not navigated
    shoot(till, artifacts, f"till-replaced-{'js' if javascript else 'nojs'}")
    context.close()
    assert problems == []
