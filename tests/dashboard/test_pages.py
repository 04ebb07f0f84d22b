"""Every dashboard page for each kind of visitor: the owner sees all, staff
the counter's pages and a 403 page elsewhere, a signed-out visitor the
sign-in page, and another account's ids are 404s. Pages are HTML with the
security headers, in English and Korean."""

from __future__ import annotations

import pytest

from tests.dashboard.conftest import BrowserFactory, Shop

OWNER_ONLY = [
    "/dashboard/cards",
    "/dashboard/cards/new",
    "/dashboard/keys",
    "/dashboard/webhooks",
    "/dashboard/users",
    "/dashboard/settings",
]
EVERYONE = ["/dashboard/customers", "/dashboard/stamps/new", "/dashboard/password"]


async def _own_ids(shop: Shop) -> dict[str, str]:
    """One address of each kind holding an id of ``shop``'s account."""
    card_idx = await shop.api.card()
    stamp_idx = await shop.api.stamp(card_idx)
    webhook = await shop.api.ok("POST", "webhook/create", json={"url": "https://127.0.0.1/hook"})
    return {
        "stamp": f"/dashboard/stamps/{stamp_idx}",
        "card": f"/dashboard/cards/{card_idx}",
        "webhook": f"/dashboard/webhooks/{webhook['webhookIdx']}",
    }


async def test_the_owner_opens_every_page(browser: BrowserFactory, shop: Shop) -> None:
    ids = await _own_ids(shop)
    async with browser(shop.owner) as b:
        for path in [*OWNER_ONLY, *EVERYONE, *ids.values()]:
            response = await b.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith("text/html")
            csp = response.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "default-src 'none'" in csp
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["cache-control"] == "no-store"


async def test_staff_open_the_counters_pages_and_get_403_on_the_owners(
    browser: BrowserFactory, shop: Shop
) -> None:
    ids = await _own_ids(shop)
    async with browser(shop.staff) as b:
        for path in [*EVERYONE, ids["stamp"]]:
            assert (await b.get(path)).status_code == 200, path
        for path in [*OWNER_ONLY, ids["card"], ids["webhook"]]:
            response = await b.get(path)
            assert response.status_code == 403, path
            assert "Only an owner of this account can open this page." in response.text
        # The navigation offers staff only what they may open.
        nav = (await b.get("/dashboard/customers")).text
        assert 'href="/dashboard/keys"' not in nav and 'href="/dashboard/customers"' in nav


async def test_staff_cannot_use_the_owners_forms_either(
    browser: BrowserFactory, shop: Shop
) -> None:
    async with browser(shop.staff) as b:
        response = await b.post(
            "/dashboard/keys", {"name": "mine"}, form_from="/dashboard/customers"
        )
        assert response.status_code == 403
    keys = await shop.api.http.get("/api/stamp/v1/card/list", headers=shop.api.headers)
    assert keys.status_code == 200


async def test_signed_out_visitors_are_sent_to_sign_in_from_every_page(
    browser: BrowserFactory, shop: Shop
) -> None:
    ids = await _own_ids(shop)
    async with browser() as b:
        for path in [*OWNER_ONLY, *EVERYONE, *ids.values()]:
            response = await b.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/dashboard/login?next=")


async def test_another_accounts_ids_are_404_for_its_owner_and_staff(
    browser: BrowserFactory, shop: Shop, other_shop: Shop
) -> None:
    theirs = await _own_ids(other_shop)
    for email in (shop.owner, shop.staff):
        async with browser(email) as b:
            for path in theirs.values():
                response = await b.get(path)
                assert response.status_code in (404, 403), path
                if email == shop.owner or path == theirs["stamp"]:
                    assert response.status_code == 404, path
            for action in ("add", "remove", "redeem", "reset-pin", "next"):
                response = await b.post(
                    f"{theirs['stamp']}/{action}", form_from="/dashboard/customers"
                )
                assert response.status_code == 404, action
    assert await other_shop.api.count(int(theirs["stamp"].rsplit("/", 1)[1])) == 0


async def test_another_accounts_users_and_keys_cannot_be_changed(
    browser: BrowserFactory, shop: Shop, other_shop: Shop
) -> None:
    async with browser(other_shop.owner) as theirs:
        users_page = (await theirs.get("/dashboard/users")).text
        their_staff = int(
            users_page.split(other_shop.staff, 1)[1]
            .split("/dashboard/users/", 1)[1]
            .split('"', 1)[0]
        )
    async with browser(shop.owner) as b:
        response = await b.post(
            f"/dashboard/users/{their_staff}", {"change": "disable"}, form_from="/dashboard/users"
        )
        assert response.status_code == 404
        revoked = await b.post("/dashboard/keys/1/revoke", form_from="/dashboard/keys")
        assert revoked.status_code in (303, 404)
    assert await other_shop.api.code("GET", "card/list") == 0
    async with browser(other_shop.staff) as still_in:
        assert (await still_in.get("/dashboard/customers")).status_code == 200


@pytest.mark.parametrize(
    "path", ["/dashboard/nothing", "/dashboard/stamps/abc", "/dashboard/stamps/99999999"]
)
async def test_unknown_addresses_are_the_dashboards_404_page(
    browser: BrowserFactory, shop: Shop, path: str
) -> None:
    async with browser(shop.owner) as b:
        response = await b.get(path)
        assert response.status_code == 404
        assert "<h1>Not found</h1>" in response.text


async def test_pages_speak_korean_when_asked_and_remember_it(
    browser: BrowserFactory, shop: Shop
) -> None:
    async with browser(shop.owner) as b:
        korean = await b.get("/dashboard/customers?lang=ko")
        assert '<html lang="ko">' in korean.text and "고객 찾기" in korean.text
        again = await b.get("/dashboard/customers")
        assert "고객 찾기" in again.text
        english = await b.get(
            "/dashboard/customers", headers={"Accept-Language": "ko"}, params={"lang": "en"}
        )
        assert "Find a customer" in english.text


async def test_the_front_door_leads_to_customers_or_sign_in(
    browser: BrowserFactory, shop: Shop
) -> None:
    async with browser() as b:
        assert (await b.get("/dashboard/")).headers["location"] == "/dashboard/login"
    async with browser(shop.staff) as b:
        assert (await b.get("/dashboard/")).headers["location"] == "/dashboard/customers"
    async with browser(shop.owner) as b:
        assert (await b.get("/dashboard/")).headers["location"] == "/dashboard/overview"


async def test_htmx_is_served_from_our_origin_with_its_licence_beside_it(
    browser: BrowserFactory,
) -> None:
    async with browser() as b:
        login = await b.get("/dashboard/login")
        assert (
            '<script src="/dashboard/static/vendor/htmx-2.0.4.min.js" defer></script>' in login.text
        )
        script = await b.get("/dashboard/static/vendor/htmx-2.0.4.min.js")
        assert script.status_code == 200 and "htmx" in script.text[:2000]
        licence = await b.get("/dashboard/static/vendor/htmx-2.0.4.LICENSE")
        assert "Zero-Clause BSD" in licence.text
