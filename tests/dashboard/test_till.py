"""The Till and the dashboard's side of codes and fraud controls, over HTTP:
the screen shows one live code until it is claimed or expires, then a new
one (polled by htmx, or a meta refresh without JavaScript); the card form
sets the new card options; a stamp past its daily threshold is flagged; the
daily limit holds on the dashboard's add too."""

from __future__ import annotations

import re

from tests.codes.conftest import claim
from tests.dashboard.conftest import BrowserFactory, Shop

CODE_URL = re.compile(r'data-code-url="https://stamps\.example\.test/c/([^"]+)"')


def shown_code(html: str) -> str:
    found = CODE_URL.search(html)
    assert found, html[:3000]
    return found.group(1)


async def test_the_till_shows_one_code_until_it_is_claimed_then_a_new_one(
    shop: Shop, browser: BrowserFactory
) -> None:
    card_idx = await shop.api.card(cardNm="Corner Coffee")
    stamp_idx = await shop.api.stamp(card_idx)
    till = f"/dashboard/till?card={card_idx}"
    async with browser(shop.staff) as b:
        chooser = await b.get("/dashboard/till")
        assert chooser.status_code == 200 and "Corner Coffee" in chooser.text

        first = await b.get(till)
        assert first.status_code == 200
        code = shown_code(first.text)
        assert "<svg" in first.text and "Scan for 1 stamp" in first.text
        # Polled (htmx) and refreshed without JavaScript (meta refresh).
        assert f'hx-get="{till}"' in first.text and 'hx-trigger="every 2s"' in first.text
        assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in first.text
        # Reloading shows the same code while it is live.
        assert shown_code((await b.get(till)).text) == code

        assert await claim(shop.api, code, stamp_idx) == 0
        replaced = shown_code((await b.get(till)).text)
        assert replaced != code
        assert await claim(shop.api, replaced, stamp_idx) == 0
        assert await shop.api.count(stamp_idx) == 2

        # An expired code is replaced too.
        expiring = shown_code((await b.get(f"{till}&ttl=60")).text)
        shop.api.clock.advance(seconds=61)
        assert shown_code((await b.get(f"{till}&ttl=60")).text) != expiring

    listed = (await shop.api.ok("GET", "code/list"))["items"]
    assert {item["state"] for item in listed} == {"used", "expired", "live"}


async def test_the_till_worth_and_refusals(
    shop: Shop, other_shop: Shop, browser: BrowserFactory
) -> None:
    card_idx = await shop.api.card()
    foreign = await other_shop.api.card()
    async with browser(shop.staff) as b:
        three = await b.get(f"/dashboard/till?card={card_idx}&stamps=3")
        assert "Scan for 3 stamps" in three.text
        created = (await shop.api.ok("GET", "code/list"))["items"][0]
        assert created["stamps"] == 3
        # Another account's card, a bad worth: the chooser again, saying why.
        refused = await b.get(f"/dashboard/till?card={foreign}")
        assert refused.status_code == 409 and "Card not found." in refused.text
        bad = await b.get(f"/dashboard/till?card={card_idx}&stamps=11")
        assert bad.status_code == 400 and "stamps" in bad.text
        korean = await b.get(f"/dashboard/till?card={card_idx}&lang=ko")
        assert "스캔하면 스탬프 1개" in korean.text
    async with browser() as anonymous:
        response = await anonymous.get(f"/dashboard/till?card={card_idx}")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/dashboard/login")


async def test_the_card_form_sets_the_new_options(shop: Shop, browser: BrowserFactory) -> None:
    card_idx = await shop.api.card()
    page = f"/dashboard/cards/{card_idx}"
    async with browser(shop.owner) as b:
        response = await b.post(
            page,
            {"cardNm": "Coffee", "maxStamps": "10", "minIntervalSec": "0", "maxAddsPerDay": "2",
             "suspiciousAddsPerDay": "1", "autoRenewYn": "Y"},
        )  # fmt: skip
        assert response.status_code == 303
    card = await shop.api.ok("GET", "card/get", params={"cardIdx": card_idx})
    assert (card["maxAddsPerDay"], card["suspiciousAddsPerDay"], card["autoRenewYn"]) == (2, 1, "Y")


async def test_a_stamp_past_the_threshold_is_flagged_and_the_limit_holds_on_the_dashboard(
    shop: Shop, browser: BrowserFactory
) -> None:
    card_idx = await shop.api.card(maxAddsPerDay=3, suspiciousAddsPerDay=1)
    stamp_idx = await shop.api.stamp(card_idx)
    page = f"/dashboard/stamps/{stamp_idx}"
    async with browser(shop.staff) as b:
        assert await shop.api.add(stamp_idx) == 0
        assert 'data-flag="suspicious"' not in (await b.get(page)).text
        assert await shop.api.add(stamp_idx) == 0
        flagged = await b.get(page)
        assert 'data-flag="suspicious"' in flagged.text
        assert "Suspicious: 2 stamps today, above the card&#39;s threshold of 1." in flagged.text
        assert (await b.post(f"{page}/add", form_from=page)).status_code == 303
        refused = await b.post(f"{page}/add", form_from=page)
        assert refused.status_code == 409
        assert "limit of stamps per day" in refused.text
        shop.api.clock.advance(days=1)
        assert 'data-flag="suspicious"' not in (await b.get(page)).text
    assert await shop.api.count(stamp_idx) == 3
