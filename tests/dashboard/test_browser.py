"""The dashboard in a real browser: Playwright driving Debian's Chromium against
a real server on 127.0.0.1, with JavaScript on (htmx boosts links and forms)
and, for one journey, off (every flow works without it).

Journeys: the owner signs in, creates a card and issues a stamp; a staff
member on a 390×844 phone finds the customer, adds stamps until the card is
complete and redeems it, in at most three screens to the first stamp; staff
cannot open the API-key page; and an axe-core scan of every page finds no
serious or critical violation. Screenshots at 390×844 and 1280×800 go to
tests/artifacts/ (dashboard-*.png).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, expect

from stampbook.app import create_app
from stampbook.config import Settings
from tests.conftest import new_key
from tests.dashboard.conftest import PASSWORD, add_user
from tests.page.test_browser import DESKTOP, PHONE, _free_port, launched_chromium

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe-4.10.2.min.js"
# Status codes the dashboard answers on purpose (403 page, 404 page) are logged
# by Chromium as console errors; anything else (a CSP violation) is a problem.
REFUSED_STATUS = "Failed to load resource: the server responded with a status of 4"


@pytest.fixture(scope="module")
def server(sqlite_url: str) -> Iterator[str]:
    """A real uvicorn serving the app on a free port; yields its base URL."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=sqlite_url,
        public_url=base,
        rate_limit="off",
        dispatcher_enabled=False,
        webhook_allow_private=True,
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


@pytest.fixture(scope="module")
def people(sqlite_url: str) -> dict[str, str]:
    """A fresh account with an owner and a staff member: their emails."""
    key, account_idx = asyncio.run(new_key(sqlite_url))
    return {
        "key": key,
        "owner": asyncio.run(add_user(sqlite_url, account_idx, "owner")),
        "staff": asyncio.run(add_user(sqlite_url, account_idx, "staff")),
    }


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium for the dashboard's journeys (``browser`` is the
    dashboard conftest's own fixture here)."""
    with launched_chromium() as launched:
        yield launched


class Screen:
    """A fresh browser profile signed in as someone, watching for trouble."""

    def __init__(
        self,
        chromium: Browser,
        server: str,
        *,
        viewport: dict[str, int],
        javascript: bool = True,
        locale: str = "en-US",
    ) -> None:
        self.server = server
        self.viewport = viewport
        self.context: BrowserContext = chromium.new_context(
            viewport=viewport, java_script_enabled=javascript, locale=locale
        )
        self.page: Page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", self._check_console)
        self.page.on("request", self._check_request)

    def _check_console(self, message: Any) -> None:
        if message.type == "error" and not message.text.startswith(REFUSED_STATUS):
            self.problems.append(message.text)

    def _check_request(self, request: Any) -> None:
        if not request.url.startswith(self.server):
            self.problems.append(f"external request {request.url}")

    def sign_in(self, email: str, *, lands_on: str) -> None:
        """Sign in through the form; the first page is ``lands_on``'s heading."""
        self.page.goto(f"{self.server}/dashboard/login")
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("heading", name=lands_on, level=1)).to_be_visible()

    def shoot(self, artifacts: Path, name: str) -> None:
        """Save the page at phone size and at desktop size."""
        for size, label in ((PHONE, "phone"), (DESKTOP, "desktop")):
            self.page.set_viewport_size(size)
            self.page.screenshot(
                # caret="initial": hiding the caret injects a style our CSP refuses.
                path=str(artifacts / f"dashboard-{name}-{label}.png"),
                full_page=True,
                caret="initial",
            )
        self.page.set_viewport_size(self.viewport)

    def axe(self) -> list[str]:
        """Serious and critical axe-core violations on the current page."""
        # Evaluated by the DevTools protocol, which our CSP (no inline script) does not cover.
        self.page.evaluate(AXE.read_text())
        results = self.page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
            ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"
        )
        return [f"{self.page.url} {violation}" for violation in results]

    def close(self) -> None:
        """Close the profile; no CSP violation or external request may have happened."""
        self.context.close()
        assert self.problems == []


def test_owner_signs_in_creates_a_card_and_issues_a_stamp(
    people: dict[str, str], chromium: Browser, server: str, artifacts: Path
) -> None:
    owner = Screen(chromium, server, viewport=DESKTOP)
    page = owner.page
    owner.page.goto(f"{server}/dashboard/login")
    owner.shoot(artifacts, "sign-in")
    owner.sign_in(people["owner"], lands_on="Overview")
    page.get_by_role("link", name="Cards").click()
    expect(page.get_by_role("heading", name="Cards", level=1)).to_be_visible()
    page.get_by_role("link", name="New card").click()
    expect(page.get_by_role("heading", name="New card", level=1)).to_be_visible()
    page.get_by_label("Card name").fill("Bean There Coffee")
    page.get_by_label("Card description").fill("Collect 5 stamps for a free americano")
    page.get_by_label("Stamps for the reward").fill("5")
    owner.shoot(artifacts, "card-new")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.locator(".card .card-name")).to_have_text("Bean There Coffee")
    owner.shoot(artifacts, "card-edit")
    page.get_by_role("link", name="New stamp card").click()
    expect(page.get_by_role("heading", name="New stamp card", level=1)).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Kim Minji")
    page.get_by_label("Phone").fill("010-1234-5678")
    owner.shoot(artifacts, "stamp-new")
    page.get_by_role("button", name="New stamp card").click()
    expect(page.get_by_role("status")).to_have_text("New stamp card issued.")
    expect(page.get_by_role("heading", name="Kim Minji")).to_be_visible()
    expect(page.get_by_text("0 of 5 stamps", exact=True)).to_be_visible()
    owner.shoot(artifacts, "stamp-issued")
    owner.close()


def test_staff_on_a_phone_find_the_customer_stamp_to_complete_and_redeem(
    people: dict[str, str], chromium: Browser, server: str, artifacts: Path
) -> None:
    staff = Screen(chromium, server, viewport=PHONE)
    page = staff.page
    staff.sign_in(people["staff"], lands_on="Customers")
    screens = [page.url]  # screen 1: Customers, where sign-in lands
    staff.shoot(artifacts, "customers")
    page.get_by_label("Find a customer").fill("1234-5678")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="Kim Minji")).to_be_visible()
    screens.append(page.url)  # screen 2: the results
    staff.shoot(artifacts, "customers-found")
    page.get_by_role("link", name="Kim Minji").first.click()
    expect(page.get_by_role("heading", name="Kim Minji")).to_be_visible()
    screens.append(page.url)  # screen 3: the customer's card, with its Add button
    staff.shoot(artifacts, "stamp-detail")
    add = page.get_by_role("button", name="+1 Add stamp")
    expect(add).to_be_in_viewport()  # no scrolling on the phone
    for n in range(1, 6):
        page.get_by_role("button", name="+1 Add stamp").click()
        expect(page.get_by_text(f"{n} of 5 stamps", exact=True)).to_be_visible()
    assert len(screens) == 3 and "/dashboard/stamps/" in screens[-1]
    expect(page.get_by_role("button", name="+1 Add stamp")).to_have_count(0)
    staff.shoot(artifacts, "stamp-complete")
    page.get_by_role("button", name="Hand over the reward").click()
    expect(page.get_by_role("status")).to_have_text("Reward handed over.")
    expect(page.get_by_role("button", name="Issue the next card")).to_be_visible()
    staff.shoot(artifacts, "stamp-redeemed")
    redeemed = page.url.split("?")[0]
    page.get_by_role("button", name="Issue the next card").click()
    expect(page.get_by_text("0 of 5 stamps", exact=True)).to_be_visible()
    page.goto(redeemed)  # the redeemed card now leads to its successor
    expect(page.get_by_role("link", name="Open the next card")).to_be_visible()
    expect(page.get_by_role("button", name="Issue the next card")).to_have_count(0)
    staff.shoot(artifacts, "stamp-renewed")
    page.goto(f"{redeemed}?lang=ko")
    expect(page.get_by_role("link", name="다음 카드 열기")).to_be_visible()
    staff.shoot(artifacts, "stamp-renewed-ko")
    staff.close()


def test_without_javascript_staff_still_add_a_stamp(
    people: dict[str, str], chromium: Browser, server: str, artifacts: Path
) -> None:
    staff = Screen(chromium, server, viewport=PHONE, javascript=False)
    page = staff.page
    staff.sign_in(people["staff"], lands_on="Customers")
    page.get_by_role("link", name="New stamp card").click()
    expect(page.get_by_role("heading", name="New stamp card", level=1)).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Park Jisoo")
    page.get_by_role("button", name="New stamp card").click()
    page.get_by_role("button", name="+1 Add stamp").click()
    expect(page.get_by_role("status")).to_have_text("Stamp added.")
    expect(page.get_by_text("1 of 5 stamps", exact=True)).to_be_visible()
    for _ in range(4):
        page.get_by_role("button", name="+1 Add stamp").click()
    page.get_by_role("button", name="Hand over the reward").click()
    page.get_by_role("button", name="Issue the next card").click()
    expect(page.get_by_text("0 of 5 stamps", exact=True)).to_be_visible()
    page.go_back()
    page.reload()
    expect(page.get_by_role("link", name="Open the next card")).to_be_visible()
    staff.shoot(artifacts, "stamp-renewed-nojs")
    staff.close()


def test_staff_cannot_open_the_api_key_page(
    people: dict[str, str], chromium: Browser, server: str, artifacts: Path
) -> None:
    staff = Screen(chromium, server, viewport=PHONE)
    staff.sign_in(people["staff"], lands_on="Customers")
    expect(staff.page.get_by_role("link", name="API keys")).to_have_count(0)
    response = staff.page.goto(f"{server}/dashboard/keys")
    assert response is not None and response.status == 403
    expect(staff.page.get_by_role("heading", name="Not for your role")).to_be_visible()
    staff.shoot(artifacts, "forbidden")
    staff.close()


OWNER_PAGES = [
    ("overview", "/dashboard/overview"),
    ("export", "/dashboard/export"),
    ("customers", "/dashboard/customers"),
    ("stamps-new", "/dashboard/stamps/new"),
    ("cards", "/dashboard/cards"),
    ("keys", "/dashboard/keys"),
    ("webhooks", "/dashboard/webhooks"),
    ("users", "/dashboard/users"),
    ("settings", "/dashboard/settings"),
    ("password", "/dashboard/password"),
    ("not-found", "/dashboard/nothing-here"),
]


def test_axe_finds_no_serious_violation_on_any_page(
    people: dict[str, str], chromium: Browser, server: str, artifacts: Path
) -> None:
    # A card and a stamp of the account's own, whichever journeys ran before.
    with httpx.Client(base_url=server, headers={"Authorization": f"APIKey {people['key']}"}) as api:
        card = api.post("/api/stamp/v1/card/create", json={"cardNm": "Tea", "maxStamps": 8})
        today = date.today().isoformat()
        body = {"cardIdx": card.json()["result"], "strtYmd": today, "endYmd": today}
        assert api.post("/api/stamp/v1/create", json={**body, "userNm": "Axe"}).json()["code"] == 0
    violations: list[str] = []
    visitor = Screen(chromium, server, viewport=PHONE)
    visitor.page.goto(f"{server}/dashboard/login")
    violations += visitor.axe()
    visitor.close()

    owner = Screen(chromium, server, viewport=DESKTOP)
    page = owner.page
    owner.sign_in(people["owner"], lands_on="Overview")
    page.goto(f"{server}/dashboard/webhooks")
    page.get_by_label("Endpoint URL").fill("https://127.0.0.1:9/hook")
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.locator("[data-secret=webhook]")).to_be_visible()
    owner.shoot(artifacts, "webhook-created")
    pages = list(OWNER_PAGES)
    lists = {
        "/dashboard/webhooks": "a[href^='/dashboard/webhooks/']",
        "/dashboard/cards": "a[href^='/dashboard/cards/']:not([href$='new'])",
    }
    for listing, selector in lists.items():
        page.goto(f"{server}{listing}")
        href = page.locator(selector).first.get_attribute("href")
        assert href
        pages.append((href.strip("/").replace("/", "-"), href))
    page.goto(f"{server}/dashboard/customers")
    stamp_href = page.locator("a[href^='/dashboard/stamps/']:not([href$='new'])").first
    pages.append(("stamp", str(stamp_href.get_attribute("href"))))
    for name, path in pages:
        page.goto(f"{server}{path}")
        violations += owner.axe()
        owner.shoot(artifacts, f"owner-{name}")
    page.goto(f"{server}/dashboard/customers?lang=ko")
    violations += owner.axe()
    owner.shoot(artifacts, "customers-ko")
    owner.close()
    assert violations == []
