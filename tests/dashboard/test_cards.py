"""The Cards page deactivates and reactivates a card through the card API's
own update (owner only, CSRF-checked), shows the state, and still deletes a
card no stamp was issued on. A deactivated card issues no stamp from the
dashboard either; its stamps keep taking stamps."""

from __future__ import annotations

from tests.dashboard.conftest import BrowserFactory, Shop


async def _active(shop: Shop, card_idx: int) -> str:
    card = await shop.api.ok("GET", "card/get", params={"cardIdx": card_idx})
    return str(card["activeYn"])


async def test_the_owner_deactivates_and_reactivates_a_card(
    browser: BrowserFactory, shop: Shop
) -> None:
    card_idx = await shop.api.card(cardNm="Bakery")
    stamp_idx = await shop.api.stamp(card_idx)
    page = f"/dashboard/cards/{card_idx}"
    today = shop.api.today.isoformat()
    async with browser(shop.owner) as b:
        shown = (await b.get(page)).text
        assert "Active: issues new stamps." in shown and "Deactivate card" in shown
        off = await b.post(f"{page}/active", {"activeYn": "N"}, form_from=page)
        assert (off.status_code, off.headers["location"]) == (303, f"{page}?done=saved")
        assert await _active(shop, card_idx) == "N"
        shown = (await b.get(page)).text
        assert "Deactivated: issues no new stamps" in shown and "Reactivate card" in shown
        assert f"/dashboard/stamps/new?card={card_idx}" not in shown
        assert "deactivated" in (await b.get("/dashboard/cards")).text

        issued = await b.post(
            "/dashboard/stamps/new", {"cardIdx": str(card_idx), "strtYmd": today, "endYmd": today}
        )
        assert issued.status_code == 409
        assert "The card is deactivated: it issues no new stamps." in issued.text
        stamp_page = f"/dashboard/stamps/{stamp_idx}"
        added = await b.post(f"{stamp_page}/add", form_from=stamp_page)
        assert added.status_code == 303 and await shop.api.count(stamp_idx) == 1

        in_korean = (await b.get(page, params={"lang": "ko"})).text
        assert "카드 다시 활성화" in in_korean and "비활성: 새 스탬프를" in in_korean
        on = await b.post(f"{page}/active", {"activeYn": "Y"}, form_from=page)
        assert on.status_code == 303 and await _active(shop, card_idx) == "Y"
    assert [s["stampIdx"] for s in (await shop.api.ok("GET", "list"))["items"]] == [stamp_idx]


async def test_a_deactivated_card_is_offered_only_where_it_still_applies(
    browser: BrowserFactory, shop: Shop
) -> None:
    open_card = await shop.api.card(cardNm="Open card")
    closed_card = await shop.api.card(cardNm="Closed card")
    on_closed = await shop.api.stamp(closed_card)
    on_open = await shop.api.stamp(open_card)
    await shop.api.ok("PUT", "card/update", json={"cardIdx": closed_card, "activeYn": "N"})
    closed_option = f'<option value="{closed_card}"'
    async with browser(shop.owner) as b:
        # Not offered where a stamp would newly go onto it...
        assert closed_option not in (await b.get("/dashboard/stamps/new")).text
        assert closed_option not in (await b.get(f"/dashboard/stamps/{on_open}")).text
        # ...but still where its stamps are found, and on its own stamps' page.
        assert closed_option in (await b.get("/dashboard/customers")).text
        assert closed_option in (await b.get(f"/dashboard/stamps/{on_closed}")).text


async def test_staff_and_forged_forms_cannot_deactivate(
    browser: BrowserFactory, shop: Shop
) -> None:
    card_idx = await shop.api.card()
    page = f"/dashboard/cards/{card_idx}"
    async with browser(shop.staff) as b:
        refused = await b.post(
            f"{page}/active", {"activeYn": "N"}, form_from="/dashboard/customers"
        )
        assert refused.status_code == 403
    async with browser(shop.owner) as b:
        await b.get(page)
        forged = await b.http.post(f"{page}/active", data={"activeYn": "N", "csrf": "forged"})
        assert forged.status_code == 403
    assert await _active(shop, card_idx) == "Y"


async def test_an_unused_card_is_still_deleted_and_a_used_one_is_not(
    browser: BrowserFactory, shop: Shop
) -> None:
    unused, used = await shop.api.card(), await shop.api.card()
    await shop.api.stamp(used)
    async with browser(shop.owner) as b:
        kept = await b.post(f"/dashboard/cards/{used}/delete", form_from=f"/dashboard/cards/{used}")
        assert kept.status_code == 409 and "delete them first" in kept.text
        gone = await b.post(
            f"/dashboard/cards/{unused}/delete", form_from=f"/dashboard/cards/{unused}"
        )
        assert gone.status_code == 303
    assert await shop.api.code("GET", "card/get", params={"cardIdx": unused}) == 2101
    assert await _active(shop, used) == "Y"
