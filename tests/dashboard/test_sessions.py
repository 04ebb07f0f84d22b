"""Signing in and out: sessions in the database, revocable; cookies; CSRF and
Origin checks; sign-in throttling that never says whether an email exists."""

from __future__ import annotations

from fastapi import FastAPI

from tests.conftest import FrozenClock
from tests.dashboard.conftest import (
    PASSWORD,
    SESSION_COOKIE,
    BrowserFactory,
    Shop,
    add_user,
)
from tests.page.conftest import browser_client


async def test_signing_in_sets_a_host_prefixed_httponly_lax_secure_cookie(
    browser: BrowserFactory, shop: Shop
) -> None:
    async with browser() as b:
        response = await b.sign_in(shop.owner)
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard/"
        cookie = next(
            value
            for name, value in response.headers.multi_items()
            if name == "set-cookie" and value.startswith(SESSION_COOKIE + "=")
        )
        attributes = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "secure", "samesite=lax", "path=/"} <= attributes
        assert not any(part.startswith("domain") for part in attributes)
        assert (await b.get("/dashboard/customers")).status_code == 200


async def test_over_plain_http_the_cookie_has_no_prefix_and_no_secure_flag(
    app: FastAPI, shop: Shop, settings: object
) -> None:
    app.state.runtime.settings = app.state.runtime.settings.model_copy(
        update={"public_url": "http://stamps.example.test"}
    )
    transport_client = browser_client(app)
    transport_client.base_url = "http://testserver"  # type: ignore[misc]
    async with transport_client as http:
        page = await http.get("/dashboard/login")
        token = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        response = await http.post(
            "/dashboard/login", data={"csrf": token, "email": shop.owner, "password": PASSWORD}
        )
        cookie = response.headers.get_list("set-cookie")
        session = next(c for c in cookie if c.startswith("sb_session="))
        assert "secure" not in session.lower()
        assert "httponly" in session.lower()


async def test_signed_out_visitors_are_sent_to_the_sign_in_page(browser: BrowserFactory) -> None:
    async with browser() as b:
        response = await b.get("/dashboard/customers")
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard/login?next=/dashboard/customers"
        login = await b.get("/dashboard/login")
        assert login.status_code == 200
        assert 'name="password"' in login.text


async def test_wrong_password_unknown_email_and_disabled_user_get_one_answer(
    browser: BrowserFactory, shop: Shop
) -> None:
    answers = []
    async with browser() as b:
        for email, password in (
            (shop.owner, "wrong password!"),
            ("nobody-here@example.com", PASSWORD),
        ):
            response = await b.sign_in(email, password)
            answers.append((response.status_code, _error_of(response.text)))
    assert answers[0] == answers[1]
    assert answers[0][0] == 401
    assert "email or password is wrong" in answers[0][1]


async def test_logout_ends_the_session_in_the_database(
    app: FastAPI, browser: BrowserFactory, shop: Shop
) -> None:
    async with browser(shop.owner) as b:
        stolen = b.http.cookies.get(SESSION_COOKIE)
        response = await b.post("/dashboard/logout", form_from="/dashboard/customers")
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard/login?bye=1"
    # The old cookie, replayed by another browser, no longer opens anything.
    async with browser_client(app) as http:
        http.cookies.set(SESSION_COOKIE, stolen or "", domain="testserver")
        assert (await http.get("/dashboard/customers")).status_code == 303


async def test_a_password_change_and_disabling_end_every_session_of_that_user(
    browser: BrowserFactory, shop: Shop, database_url: str
) -> None:
    second = await add_user(database_url, shop.api.account_idx, "staff")
    async with (
        browser(shop.staff) as staff_b,
        browser(second) as second_b,
        browser(shop.owner) as owner_b,
    ):
        users_page = await owner_b.get("/dashboard/users")
        staff_idx = _user_idx(users_page.text, shop.staff)
        response = await owner_b.post(
            f"/dashboard/users/{staff_idx}", {"change": "disable"}, form_from="/dashboard/users"
        )
        assert response.status_code == 303
        assert (await staff_b.get("/dashboard/customers")).status_code == 303
        assert (await second_b.get("/dashboard/customers")).status_code == 200
        # A disabled user cannot sign in again, and is told exactly what a wrong password is.
        async with browser() as again:
            assert (await again.sign_in(shop.staff)).status_code == 401


async def test_sessions_end_after_the_idle_timeout(
    browser: BrowserFactory, shop: Shop, clock: FrozenClock, settings: object
) -> None:
    async with browser(shop.owner) as b:
        clock.advance(minutes=119)
        assert (await b.get("/dashboard/customers")).status_code == 200
        clock.advance(minutes=119)  # used 119 min ago: still alive
        assert (await b.get("/dashboard/customers")).status_code == 200
        clock.advance(minutes=121)
        assert (await b.get("/dashboard/customers")).status_code == 303


async def test_sessions_end_after_the_absolute_timeout_however_busy(
    browser: BrowserFactory, shop: Shop, clock: FrozenClock
) -> None:
    async with browser(shop.owner) as b:
        for _ in range(11):
            clock.advance(minutes=60)
            assert (await b.get("/dashboard/customers")).status_code == 200
        clock.advance(minutes=61)
        assert (await b.get("/dashboard/customers")).status_code == 303


async def test_a_form_without_its_csrf_token_changes_nothing(
    browser: BrowserFactory, shop: Shop
) -> None:
    stamp_idx = await shop.api.stamp()
    async with browser(shop.staff) as b:
        response = await b.http.post(f"/dashboard/stamps/{stamp_idx}/add", data={"once": "x1"})
        assert response.status_code == 403
        assert "The form expired" in response.text
        forged = await b.http.post(
            f"/dashboard/stamps/{stamp_idx}/add", data={"csrf": "forged", "once": "x2"}
        )
        assert forged.status_code == 403
    assert await shop.api.count(stamp_idx) == 0


async def test_a_form_from_another_site_is_refused_even_with_a_token(
    browser: BrowserFactory, shop: Shop
) -> None:
    stamp_idx = await shop.api.stamp()
    async with browser(shop.staff) as b:
        for headers in (
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
            {"Origin": "https://evil.example"},
        ):
            response = await b.post(f"/dashboard/stamps/{stamp_idx}/add", headers=headers)
            assert response.status_code == 403, headers
        same = await b.post(
            f"/dashboard/stamps/{stamp_idx}/add",
            headers={"Origin": "https://testserver", "Sec-Fetch-Site": "same-origin"},
        )
        assert same.status_code == 303
    assert await shop.api.count(stamp_idx) == 1


async def test_a_token_of_one_session_does_not_serve_another(
    browser: BrowserFactory, shop: Shop
) -> None:
    stamp_idx = await shop.api.stamp()
    async with browser(shop.owner) as owner_b, browser(shop.staff) as staff_b:
        owners_token = await owner_b.csrf("/dashboard/customers")
        response = await staff_b.http.post(
            f"/dashboard/stamps/{stamp_idx}/add", data={"csrf": owners_token, "once": "y"}
        )
        assert response.status_code == 403
    assert await shop.api.count(stamp_idx) == 0


async def test_repeated_failures_for_one_email_lock_it_whatever_the_address(
    browser: BrowserFactory, shop: Shop
) -> None:
    for _ in range(3):  # login_email_failures = 3 in these tests
        async with browser() as b:
            assert (await b.sign_in(shop.owner, "not the password")).status_code == 401
    async with browser() as b:
        locked = await b.sign_in(shop.owner)  # even the right password
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) == 15 * 60
        assert "Too many failed sign-ins" in locked.text


async def test_an_unknown_email_locks_exactly_like_a_known_one(browser: BrowserFactory) -> None:
    for _ in range(3):
        async with browser() as b:
            assert (await b.sign_in("ghost@example.com", "whatever it is")).status_code == 401
    async with browser() as b:
        assert (await b.sign_in("ghost@example.com", "whatever it is")).status_code == 429


async def test_repeated_failures_from_one_address_lock_that_address(
    browser: BrowserFactory, shop: Shop
) -> None:
    address = "127.9.9.9"
    async with browser(address=address) as b:
        for n in range(6):  # login_address_failures = 6: a different email each time
            response = await b.sign_in(f"guess{n}@example.com", "not the password")
            assert response.status_code == 401
        assert (await b.sign_in(shop.owner)).status_code == 429
    async with browser() as elsewhere:
        assert (await elsewhere.sign_in(shop.owner)).status_code == 303


async def test_the_lock_ends_after_its_period(
    browser: BrowserFactory, shop: Shop, clock: FrozenClock
) -> None:
    for _ in range(3):
        async with browser() as b:
            await b.sign_in(shop.owner, "not the password")
    clock.advance(minutes=16)
    async with browser() as b:
        assert (await b.sign_in(shop.owner)).status_code == 303


def _error_of(html: str) -> str:
    return html.split('role="alert">', 1)[1].split("<", 1)[0] if 'role="alert">' in html else ""


def _user_idx(html: str, email: str) -> int:
    part = html.split(email, 1)[1]
    return int(part.split('action="/dashboard/users/', 1)[1].split('"', 1)[0])


async def test_changing_ones_password_ends_every_other_session_of_that_user(
    browser: BrowserFactory, shop: Shop
) -> None:
    async with (
        browser(shop.staff) as here,
        browser(shop.staff) as elsewhere,
        browser(shop.owner) as colleague,
    ):
        wrong = await here.post(
            "/dashboard/password", {"current": "not my password", "new": "a brand new one"}
        )
        assert wrong.status_code == 409 and "email or password is wrong" in wrong.text
        short = await here.post("/dashboard/password", {"current": PASSWORD, "new": "short"})
        assert short.status_code == 409 and "at least 10 characters" in short.text
        changed = await here.post(
            "/dashboard/password", {"current": PASSWORD, "new": "a brand new one"}
        )
        assert changed.status_code == 303
        assert (await here.get("/dashboard/password?done=1")).status_code == 200
        assert (await elsewhere.get("/dashboard/customers")).status_code == 303
        assert (await colleague.get("/dashboard/customers")).status_code == 200
    async with browser() as again:
        assert (await again.sign_in(shop.staff)).status_code == 401
        assert (await again.sign_in(shop.staff, "a brand new one")).status_code == 303
