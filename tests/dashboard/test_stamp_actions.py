"""The counter's work in the dashboard goes through the API's own services:
the same rules and refusals, ledger rows with source DASHBOARD and the user
who acted, outbox webhooks; and a form sent twice writes once."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select

from stampbook.db.schema import dashboard_user, webhook_message
from stampbook.kit.db import Database
from tests.conftest import ledger, subscribed
from tests.dashboard.conftest import BrowserFactory, Shop


async def _user_idx(database_url: str, email: str) -> int:
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            query = select(dashboard_user.c.user_idx).where(dashboard_user.c.email == email)
            return int((await conn.execute(query)).scalar_one())
    finally:
        await database.dispose()


async def _messages(database_url: str, account_idx: int) -> list[str]:
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            query = (
                select(webhook_message.c.event_type)
                .where(webhook_message.c.account_idx == account_idx)
                .order_by(webhook_message.c.message_idx)
            )
            return [row.event_type for row in (await conn.execute(query)).all()]
    finally:
        await database.dispose()


async def test_staff_add_until_complete_and_redeem_writes_the_ledger_with_who(
    browser: BrowserFactory, shop: Shop, database_url: str
) -> None:
    card_idx = await shop.api.card(maxStamps=3)
    stamp_idx = await shop.api.stamp(card_idx)
    page = f"/dashboard/stamps/{stamp_idx}"
    async with subscribed(database_url, shop.api), browser(shop.staff) as b:
        for _ in range(3):
            response = await b.post(f"{page}/add", form_from=page)
            assert response.status_code == 303
            assert response.headers["location"] == f"{page}?done=added"
        shown = await b.get(f"{page}?done=added")
        assert "Stamp added." in shown.text and "Hand over the reward" in shown.text
        assert (await b.post(f"{page}/redeem", form_from=page)).status_code == 303
        messages = await _messages(database_url, shop.api.account_idx)
    staff_idx = await _user_idx(database_url, shop.staff)
    rows = await ledger(database_url, stamp_idx)
    assert [(r.action, r.stamps_before, r.stamps_after) for r in rows] == [
        ("CREATE", 0, 0),
        ("ADD", 0, 1),
        ("ADD", 1, 2),
        ("ADD", 2, 3),
        ("USE", 3, 3),
    ]
    assert [(r.source, r.user_idx) for r in rows[1:]] == [("DASHBOARD", staff_idx)] * 4
    assert (rows[0].source, rows[0].user_idx) == ("API", None)
    assert all(r.idempotency_key.startswith("dashboard:") for r in rows[1:])
    assert messages == [
        "stamp.added",
        "stamp.added",
        "stamp.added",
        "stamp.completed",
        "stamp.used",
    ]
    # The API's history reads the same ledger.
    assert [e["source"] for e in await shop.api.history(stamp_idx)][:4] == ["DASHBOARD"] * 4


async def test_the_timeline_says_who_did_what_and_when(browser: BrowserFactory, shop: Shop) -> None:
    stamp_idx = await shop.api.stamp()
    page = f"/dashboard/stamps/{stamp_idx}"
    async with browser(shop.staff) as b:
        await b.post(f"{page}/add", form_from=page)
        html = (await b.get(page)).text
    timeline = html.split('class="timeline"', 1)[1]
    assert "Stamp added</span> 0 → 1" in timeline
    assert shop.staff in timeline
    assert "Issued</span> 0 → 0" in timeline and "API" in timeline


async def test_a_form_sent_twice_adds_once(browser: BrowserFactory, shop: Shop) -> None:
    stamp_idx = await shop.api.stamp()
    page = f"/dashboard/stamps/{stamp_idx}"
    async with browser(shop.staff) as b:
        first = await b.post(f"{page}/add", form_from=page, once="double-click-1")
        second = await b.post(f"{page}/add", form_from=page, once="double-click-1")
        assert first.headers["location"] == f"{page}?done=added"
        assert second.headers["location"] == f"{page}?done=repeated"
        third = await b.post(f"{page}/add", form_from=page, once="a-new-form")
        assert third.status_code == 303
    assert await shop.api.count(stamp_idx) == 2


async def test_refusals_show_the_apis_message_and_change_nothing(
    browser: BrowserFactory, shop: Shop, database_url: str
) -> None:
    card_idx = await shop.api.card(maxStamps=1)
    stamp_idx = await shop.api.stamp(card_idx)
    page = f"/dashboard/stamps/{stamp_idx}"
    async with browser(shop.staff) as b:
        refused = await b.post(f"{page}/redeem", form_from=page)
        assert refused.status_code == 409
        assert "not complete" in refused.text.lower()
        await b.post(f"{page}/add", form_from=page)
        full = await b.post(f"{page}/add", form_from=page)
        assert full.status_code == 409
        assert 'role="alert"' in full.text
    assert [r.action for r in await ledger(database_url, stamp_idx)] == ["CREATE", "ADD"]


async def test_remove_edit_reset_pin_switch_off_and_next_card(
    browser: BrowserFactory, shop: Shop, database_url: str
) -> None:
    card_idx = await shop.api.card(maxStamps=2)
    other_card = await shop.api.card(cardNm="Tea", maxStamps=5)
    stamp_idx = await shop.api.stamp(card_idx, userNm="Kim")
    page = f"/dashboard/stamps/{stamp_idx}"
    async with browser(shop.staff) as b:
        for action in ("add", "add", "remove"):
            assert (await b.post(f"{page}/{action}", form_from=page)).status_code == 303
        edited = await b.post(
            f"{page}/update",
            {
                "userNm": "Kim Minji",
                "userPhnno": "010-1234-5678",
                "userEml": "",
                "memo": "regular",
                "cardIdx": str(other_card),
            },
            form_from=page,
        )
        assert edited.status_code == 303
        assert (await b.post(f"{page}/reset-pin", form_from=page)).status_code == 303
        assert (await b.post(f"{page}/deactivate", form_from=page)).status_code == 303
        shown = (await b.get(page)).text
        assert "Kim Minji" in shown and "Tea" in shown and "pill inactive" in shown
        assert (await b.post(f"{page}/activate", form_from=page)).status_code == 303
        bad = await b.post(f"{page}/update", {"strtYmd": "2026-02-30"}, form_from=page)
        assert bad.status_code == 409 and "strtYmd" in bad.text
    found = await shop.api.ok("GET", "list", params={"limit": 100})
    item: dict[str, Any] = next(i for i in found["items"] if i["stampIdx"] == stamp_idx)
    assert (item["userNm"], item["userPhnno"], item["cardIdx"], item["stamps"]) == (
        "Kim Minji",
        "010-1234-5678",
        other_card,
        1,
    )
    actions = [r.action for r in await ledger(database_url, stamp_idx)]
    assert actions == ["CREATE", "ADD", "ADD", "REMOVE", "UPDATE", "UPDATE", "UPDATE", "UPDATE"]


async def test_after_a_redemption_staff_issue_the_next_card_to_the_same_customer(
    browser: BrowserFactory, shop: Shop
) -> None:
    card_idx = await shop.api.card(maxStamps=1)
    stamp_idx = await shop.api.stamp(card_idx, userNm="Lee", userId="member-7")
    page = f"/dashboard/stamps/{stamp_idx}"
    async with browser(shop.staff) as b:
        await b.post(f"{page}/add", form_from=page)
        await b.post(f"{page}/redeem", form_from=page)
        response = await b.post(f"{page}/next", form_from=page)
        assert response.status_code == 303
        new_page = response.headers["location"].split("?")[0]
        assert new_page != page
        shown = (await b.get(new_page)).text
    assert "Lee" in shown and "0 of 1 stamps" in shown
    new_idx = int(re.findall(r"\d+", new_page)[0])
    found = await shop.api.ok("GET", "list", params={"limit": 100, "userId": "member-7"})
    assert {i["stampIdx"] for i in found["items"]} == {stamp_idx, new_idx}
    async with browser(shop.staff) as b:
        # The redeemed card now leads to its successor, and asking again issues no second.
        shown = (await b.get(page)).text
        assert "Open the next card" in shown and f'href="/dashboard/stamps/{new_idx}"' in shown
        again = await b.post(f"{page}/next", form_from=page)
        assert again.headers["location"].split("?")[0] == new_page
    found = await shop.api.ok("GET", "list", params={"limit": 100, "userId": "member-7"})
    assert len(found["items"]) == 2


async def test_a_renewed_card_links_to_its_next_card_and_is_not_issued_twice(
    browser: BrowserFactory, shop: Shop
) -> None:
    card_idx = await shop.api.card(maxStamps=1, autoRenewYn="Y")
    stamp_idx = await shop.api.stamp(card_idx, userId="member-8")
    page = f"/dashboard/stamps/{stamp_idx}"
    async with browser(shop.staff) as b:
        await b.post(f"{page}/add", form_from=page)
        await b.post(f"{page}/redeem", form_from=page)
        found = await shop.api.ok("GET", "list", params={"limit": 100, "userId": "member-8"})
        (renewed,) = [i["stampIdx"] for i in found["items"] if i["stampIdx"] != stamp_idx]
        shown = (await b.get(page)).text
        assert f'href="/dashboard/stamps/{renewed}"' in shown and "Issue the next card" not in shown
        again = await b.post(f"{page}/next", form_from=page)
        assert again.headers["location"].split("?")[0] == f"/dashboard/stamps/{renewed}"
    found = await shop.api.ok("GET", "list", params={"limit": 100, "userId": "member-8"})
    assert len(found["items"]) == 2


async def test_only_an_owner_deletes_and_only_when_confirmed(
    browser: BrowserFactory, shop: Shop, database_url: str
) -> None:
    stamp_idx = await shop.api.stamp()
    page = f"/dashboard/stamps/{stamp_idx}"
    async with browser(shop.staff) as b:
        assert (
            await b.post(f"{page}/delete", {"confirm": "yes"}, form_from=page)
        ).status_code == 403
    async with browser(shop.owner) as b:
        unconfirmed = await b.post(f"{page}/delete", form_from=page)
        assert unconfirmed.status_code == 400
        assert await shop.api.count(stamp_idx) == 0
        done = await b.post(f"{page}/delete", {"confirm": "yes"}, form_from=page)
        assert done.status_code == 303
        assert (await b.get(page)).status_code == 404
    assert await ledger(database_url, stamp_idx) == []


async def test_staff_issue_a_new_stamp_card(
    browser: BrowserFactory, shop: Shop, database_url: str
) -> None:
    card_idx = await shop.api.card()
    today = shop.api.today
    async with browser(shop.staff) as b:
        response = await b.post(
            "/dashboard/stamps/new",
            {
                "cardIdx": str(card_idx),
                "userNm": "Park",
                "userPhnno": "010-5555-0000",
                "strtYmd": today.isoformat(),
                "endYmd": today.replace(year=today.year + 1).isoformat(),
            },
        )
        assert response.status_code == 303
        stamp_idx = int(response.headers["location"].split("/")[-1].split("?")[0])
        listed = await b.get("/dashboard/customers", params={"q": "5555"})
        assert f'href="/dashboard/stamps/{stamp_idx}"' in listed.text
        refused = await b.post(
            "/dashboard/stamps/new",
            {"cardIdx": "abc", "strtYmd": today.isoformat(), "endYmd": today.isoformat()},
        )
        assert refused.status_code == 409 and "cardIdx" in refused.text
    rows = await ledger(database_url, stamp_idx)
    assert [(r.action, r.source) for r in rows] == [("CREATE", "DASHBOARD")]
    assert rows[0].user_idx == await _user_idx(database_url, shop.staff)


async def test_the_owner_creates_and_edits_a_card_with_a_preview(
    browser: BrowserFactory, shop: Shop
) -> None:
    async with browser(shop.owner) as b:
        created = await b.post(
            "/dashboard/cards/new",
            {
                "cardNm": "Bakery",
                "cardTtl": "Ten breads",
                "maxStamps": "8",
                "onsiteYn": "Y",
                "onsitePwd": "4321",
            },
        )
        assert created.status_code == 303
        edit_page = created.headers["location"].split("?")[0]
        shown = (await b.get(edit_page)).text
        assert 'id="card-name" class="card-name">Bakery' in shown  # the page's own card template
        assert shown.count('class="slot filled"') == 3 and shown.count('class="slot"') == 5
        changed = await b.post(
            edit_page, {"cardNm": "Bakery+", "maxStamps": "12", "minIntervalSec": "60"}
        )
        assert changed.status_code == 303
        refused = await b.post(edit_page, {"cardNm": "", "maxStamps": "12"})
        assert refused.status_code == 409
    card = await shop.api.ok(
        "GET", "card/get", params={"cardIdx": int(edit_page.rsplit("/", 1)[1])}
    )
    assert (card["cardNm"], card["maxStamps"], card["minIntervalSec"], card["onsitePwd"]) == (
        "Bakery+",
        12,
        60,
        "4321",
    )


async def test_owner_pages_keys_users_settings_webhooks(
    browser: BrowserFactory, shop: Shop, client: Any
) -> None:
    async with browser(shop.owner) as b:
        made = await b.post("/dashboard/keys", {"name": "till"})
        assert made.status_code == 200
        key = re.search(r'data-secret="key">(sk_[^<]+)<', made.text)
        assert key
        headers = {"Authorization": f"APIKey {key.group(1)}"}
        assert (await client.get("/api/stamp/v1/card/list", headers=headers)).json()["code"] == 0
        listing = (await b.get("/dashboard/keys")).text
        assert key.group(1) not in listing and key.group(1)[:11] in listing
        key_idx = int(re.findall(r"/dashboard/keys/(\d+)/revoke", listing)[0])
        assert (
            await b.post(f"/dashboard/keys/{key_idx}/revoke", form_from="/dashboard/keys")
        ).status_code == 303

        added = await b.post(
            "/dashboard/users",
            {"email": "new.staff@example.com", "password": "ten chars!!", "role": "staff"},
        )
        assert added.status_code == 303
        short = await b.post(
            "/dashboard/users", {"email": "x@example.com", "password": "short", "role": "staff"}
        )
        assert short.status_code == 409 and "at least 10 characters" in short.text

        saved = await b.post(
            "/dashboard/settings",
            {
                "timezone": "Asia/Seoul",
                "displayName": "Café Seoul",
                "logoUrl": "https://cdn.example.test/logo.png",
            },
        )
        assert saved.status_code == 303
        bad = await b.post("/dashboard/settings", {"timezone": "Mars/Olympus"})
        assert bad.status_code == 409 and "timezone" in bad.text

        hook = await b.post("/dashboard/webhooks", {"url": "https://127.0.0.1/receiver"})
        assert hook.status_code == 200 and 'data-secret="webhook">whsec_' in hook.text
    stamp_idx = await shop.api.stamp()
    page_url = next(
        i for i in (await shop.api.ok("GET", "list"))["items"] if i["stampIdx"] == stamp_idx
    )["stampUrl"]
    customer_page = await client.get(page_url.replace("https://stamps.example.test", ""))
    assert "Café Seoul" in customer_page.text
    assert 'src="https://cdn.example.test/logo.png"' in customer_page.text
    # Staff sign in; the new user can, the revoked key cannot.
    assert (await client.get("/api/stamp/v1/card/list", headers=headers)).json()["code"] == 1101
    async with browser() as staff_b:
        assert (await staff_b.sign_in("new.staff@example.com", "ten chars!!")).status_code == 303
        assert (await staff_b.get("/dashboard/customers")).status_code == 200


async def test_key_last_used_is_the_keys_last_change(browser: BrowserFactory, shop: Shop) -> None:
    stamp_idx = await shop.api.stamp()
    await shop.api.add(stamp_idx)
    async with browser(shop.owner) as b:
        listing = (await b.get("/dashboard/keys")).text
    row = listing.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    cells = re.findall(r"<td>([^<]*)</td>", row)
    assert cells[-1] != "–"  # created and last used are both dates


async def test_dates_are_shown_in_the_accounts_time_zone(
    browser: BrowserFactory, shop: Shop, database_url: str
) -> None:
    stamp_idx = await shop.api.stamp()
    async with browser(shop.owner) as b:
        before = (await b.get(f"/dashboard/stamps/{stamp_idx}")).text
        await b.post(
            "/dashboard/settings", {"timezone": "Asia/Seoul", "displayName": "", "logoUrl": ""}
        )
        after = (await b.get(f"/dashboard/stamps/{stamp_idx}")).text
    utc_time = re.search(r"<time>(\d{4}-\d\d-\d\d \d\d:\d\d)</time>", before)
    seoul_time = re.search(r"<time>(\d{4}-\d\d-\d\d \d\d:\d\d)</time>", after)
    assert utc_time and seoul_time
    from datetime import datetime, timedelta

    shift = datetime.fromisoformat(seoul_time.group(1)) - datetime.fromisoformat(utc_time.group(1))
    assert shift == timedelta(hours=9)
    assert func  # the ledger helpers above read through SQLAlchemy
