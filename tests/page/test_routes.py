"""The stamp page over HTTP: 404s, the token, what is shown, the PIN, on-site
staff actions, lockouts, CSRF, headers, QR codes and languages."""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
from datetime import timedelta
from typing import Any

import httpx
import orjson
import segno
from sqlalchemy import select

from stampbook.app import create_app
from stampbook.config import Settings
from stampbook.db.schema import stamp, webhook_message
from stampbook.kit.clock import FrozenClock
from stampbook.kit.db import Database
from stampbook.page.service import web_url
from stampbook.page.text import TEXT
from stampbook.webhooks import outbox
from tests.conftest import Api, new_key, subscribed
from tests.page.conftest import Visitor, VisitorFactory, page_path, stamp_url

CSP = (
    "default-src 'none'; img-src 'self' data: https:; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
TOKEN = re.compile(r"/s/([A-Za-z0-9_-]{32})")


async def stamp_row(database_url: str, stamp_idx: int) -> Any:
    """The stamp's row, straight from the database."""
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            query = select(stamp).where(stamp.c.stamp_idx == stamp_idx)
            return (await conn.execute(query)).one()
    finally:
        await database.dispose()


async def page_of(api: Api, stamp_idx: int) -> str:
    """``/s/{token}`` of a stamp."""
    return page_path(await stamp_url(api, stamp_idx))


def state_of(response: httpx.Response) -> str:
    """The card state the page shows."""
    found = re.search(r'data-state="(\w+)"', response.text)
    assert found, response.text
    return found.group(1)


def assert_html_404(response: httpx.Response) -> None:
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Page not found" in response.text
    assert '"code"' not in response.text
    assert response.headers["content-security-policy"] == CSP


# --- addresses ------------------------------------------------------------------------


async def test_unknown_tokens_and_guessed_indexes_are_plain_404_pages(
    api: Api, client: httpx.AsyncClient
) -> None:
    stamp_idx = await api.stamp(userNm="Kim Minji")
    real = await page_of(api, stamp_idx)
    for path in (
        f"/s/{secrets.token_urlsafe(24)}",
        f"/s/{stamp_idx}",
        "/s/1",
        f"{real}x",
        f"{real[:-1]}",
        "/s/",
        "/s/a/b/c",
        f"/s/{secrets.token_urlsafe(24)}/staff",
        f"/s/{secrets.token_urlsafe(24)}/qr.svg",
        f"/s/{secrets.token_urlsafe(24)}/qr.png",
        "/s/%00%27%22",
    ):
        response = await client.get(path)
        assert_html_404(response)
        assert "Kim Minji" not in response.text
    for suffix in ("/pin", "/staff", "/hide"):
        assert_html_404(await client.post(f"/s/{secrets.token_urlsafe(24)}{suffix}", data={}))
    assert_html_404(await client.put(real))
    assert (await client.head(real)).status_code == 200
    assert (await client.head(f"/s/{stamp_idx}")).status_code == 404
    # HTML pages are not part of the API's description.
    openapi = (await client.get("/openapi.json")).json()
    assert not [path for path in openapi["paths"] if path.startswith("/s/")]


async def test_tokens_are_192_random_bits_unrelated_to_the_index(api: Api) -> None:
    card_idx = await api.card()
    for _ in range(24):
        await api.stamp(card_idx)
    listed = (await api.ok("GET", "list", params={"limit": 100}))["items"]
    tokens = []
    for item in listed:
        found = TOKEN.fullmatch(page_path(item["stampUrl"]))
        # 32 URL-safe characters: secrets.token_urlsafe(24), 192 random bits.
        assert found, item["stampUrl"]
        tokens.append(found.group(1))
    assert len(tokens) == 24 and len(set(tokens)) == 24
    # Consecutive stamps share nothing: no common prefix beyond chance, and
    # the characters spread over the whole alphabet.
    assert max(len(_common_prefix(a, b)) for a, b in itertools.pairwise(tokens)) < 4
    assert len(set("".join(tokens))) > 50


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


# --- what the page shows ---------------------------------------------------------------


async def test_page_shows_the_card_and_hides_personal_fields(
    api: Api, client: httpx.AsyncClient
) -> None:
    card_idx = await api.card(
        cardNm="Bean There",
        cardTtl="Ten coffees, one free",
        maxStamps=10,
        url="https://shop.example.com/menu",
        stampImgUrl="https://cdn.example.com/mark.png",
    )
    stamp_idx = await api.stamp(card_idx, userNm="Kim Minji", userPhnno="010-1234-5678")
    for _ in range(7):
        assert await api.add(stamp_idx) == 0
    response = await client.get(await page_of(api, stamp_idx))
    assert response.status_code == 200
    html = response.text
    assert "Bean There" in html and "Ten coffees, one free" in html
    assert '<strong class="count-now">7</strong><span class="count-of"> / 10</span>' in html
    assert html.count('src="https://cdn.example.com/mark.png"') == 7
    assert html.count('<li class="slot">') == 3
    assert (api.today - timedelta(days=1)).isoformat() in html
    assert (api.today + timedelta(days=365)).isoformat() in html
    assert state_of(response) == "active"
    assert 'href="https://shop.example.com/menu" rel="noopener noreferrer"' in html
    assert "<svg" in html and "qr-svg" in html
    assert "Kim Minji" not in html and "010-1234-5678" not in html
    assert 'name="pin2"' in html  # first visit: choose a PIN
    assert "/staff" not in html  # the card is not on-site enabled


async def test_built_in_mark_is_served_when_the_card_has_none(
    api: Api, client: httpx.AsyncClient
) -> None:
    stamp_idx = await api.stamp()
    assert await api.add(stamp_idx) == 0
    view = (await api.validate(stamp_idx)).json()["result"]
    assert view["stampImgUrl"] == "https://stamps.example.test/static/stamp/default.svg"
    page = await client.get(page_path(view["stampUrl"]))
    assert 'src="/static/stamp/default.svg"' in page.text
    mark = await client.get("/static/stamp/default.svg")
    assert mark.status_code == 200
    assert mark.headers["content-type"].startswith("image/svg+xml")
    css = await client.get("/static/page.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


async def test_every_state_is_named(api: Api, client: httpx.AsyncClient) -> None:
    today = api.today
    card_idx = await api.card(maxStamps=2)
    inactive = await api.stamp(card_idx, activeYn="N")
    later = await api.stamp(
        card_idx,
        strtYmd=(today + timedelta(days=3)).isoformat(),
        endYmd=(today + timedelta(days=30)).isoformat(),
    )
    expired = await api.stamp(
        card_idx,
        strtYmd=(today - timedelta(days=30)).isoformat(),
        endYmd=(today - timedelta(days=1)).isoformat(),
    )
    complete = await api.stamp(card_idx)
    await api.ok("PUT", "update", json={"stampIdx": complete, "stamps": 2})
    used = await api.stamp(card_idx)
    await api.ok("PUT", "update", json={"stampIdx": used, "stamps": 2})
    await api.ok("PUT", "redeem", json={"stampIdx": used})
    active = await api.stamp(card_idx)
    expected = {
        inactive: ("inactive", "Inactive"),
        later: ("not_started", "Not started yet"),
        expired: ("expired", "Expired"),
        complete: ("complete", "Complete"),
        used: ("used", "Reward used"),
        active: ("active", "Active"),
    }
    for stamp_idx, (state, label) in expected.items():
        response = await client.get(await page_of(api, stamp_idx))
        assert response.status_code == 200
        assert state_of(response) == state
        assert label in response.text


def test_only_absolute_web_urls_are_linked() -> None:
    assert web_url("https://shop.example.com/") == "https://shop.example.com/"
    assert web_url("http://shop.example.com") == "http://shop.example.com"
    for bad in ("javascript:alert(1)", "data:text/html,x", "//evil.example", "/s/x", "", None):
        assert web_url(bad) is None


def test_every_phrase_exists_in_both_languages() -> None:
    assert set(TEXT["en"]) == set(TEXT["ko"])
    for key, phrase in TEXT["en"].items():
        assert set(re.findall(r"{(\w+)}", phrase)) == set(re.findall(r"{(\w+)}", TEXT["ko"][key]))


# --- headers ------------------------------------------------------------------------------


async def test_pages_send_security_headers_and_safe_cookies(
    api: Api, client: httpx.AsyncClient
) -> None:
    card_idx = await api.card(stampImgUrl="http://img.example.com:8080/m.png")
    path = await page_of(api, await api.stamp(card_idx))
    response = await client.get(path)
    headers = response.headers
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-security-policy"] == CSP.replace(
        "https:;", "https: http://img.example.com:8080;"
    )
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    assert "noindex" in headers["x-robots-tag"]
    cookie = headers["set-cookie"]
    assert cookie.startswith("sb_csrf=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/s/" in cookie
    assert "<script" not in response.text
    assert "http://" not in re.sub(r'src="http://img\.example\.com:8080/m\.png"', "", response.text)
    for suffix in ("/staff", "/qr.svg", "/qr.png"):
        other = await client.get(path + suffix)
        assert other.headers["cache-control"] == "no-store"
        assert other.headers["referrer-policy"] == "no-referrer"
        assert other.headers["content-security-policy"].startswith("default-src 'none'")


async def test_https_pages_set_secure_cookies(api: Api, app: Any) -> None:
    path = await page_of(api, await api.stamp())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as https:
        response = await https.get(path)
        assert "Secure" in response.headers["set-cookie"]


async def test_cookies_are_secure_when_the_public_url_is_https_though_the_request_is_http(
    api: Api, client: httpx.AsyncClient, settings: Settings
) -> None:
    # A TLS proxy on another host speaks plain http to the server (and is not
    # trusted to say X-Forwarded-Proto): the public URL alone decides.
    assert settings.public_url.startswith("https://")
    path = await page_of(api, await api.stamp())
    response = await client.get(path)
    cookies = response.headers.get_list("set-cookie")
    assert cookies and all("; secure" in cookie.lower() for cookie in cookies)


# --- the customer PIN ---------------------------------------------------------------------


async def test_pin_is_chosen_once_then_asked_for(
    api: Api, visitor: VisitorFactory, database_url: str
) -> None:
    stamp_idx = await api.stamp(userNm="Kim Minji", userEml="minji@example.com")
    path = await page_of(api, stamp_idx)
    async with visitor(path) as phone:
        for pin, again in (
            ("12", "12"),
            ("1234567", "1234567"),
            ("12a4", "12a4"),
            ("1234", "1235"),
        ):
            refused = await phone.post("/pin", {"pin": pin, "pin2": again})
            assert refused.status_code == 400
            assert "Kim Minji" not in refused.text
        assert (await stamp_row(database_url, stamp_idx)).pin_hash is None

        chosen = await phone.set_pin("482913")
        assert chosen.status_code == 303
        assert chosen.headers["location"] == f"{path}?done=pin_set"
        session = chosen.headers["set-cookie"]
        assert session.startswith("sb_pin=")
        assert "HttpOnly" in session and "SameSite=lax" in session and f"Path={path}" in session
        shown = await phone.get("?done=pin_set")
        assert "Your PIN is saved." in shown.text
        assert "Kim Minji" in shown.text and "minji@example.com" in shown.text

    row = await stamp_row(database_url, stamp_idx)
    assert row.pin_hash.startswith("$argon2id$") and "482913" not in row.pin_hash
    validated = (await api.validate(stamp_idx)).text
    assert "pin" not in validated.lower() and "argon2" not in validated

    async with visitor(path) as other:
        asked = await other.get()
        assert "Enter your PIN" in asked.text and "Kim Minji" not in asked.text
        assert 'name="pin2"' not in asked.text
        # A second "first visit" cannot replace the PIN.
        replaced = await other.post("/pin", {"pin": "111111", "pin2": "111111"})
        assert replaced.status_code == 403
        assert (await stamp_row(database_url, stamp_idx)).pin_hash == row.pin_hash
        entered = await other.enter_pin("482913")
        assert entered.status_code == 303 and entered.headers["location"] == path
        assert "Kim Minji" in (await other.get()).text
        hidden = await other.post("/hide", {})
        assert hidden.status_code == 303
        assert "Kim Minji" not in (await other.get()).text


async def test_five_wrong_pins_lock_the_page_for_fifteen_minutes(
    api: Api, visitor: VisitorFactory, clock: FrozenClock, database_url: str
) -> None:
    stamp_idx = await api.stamp(userNm="Kim Minji")
    path = await page_of(api, stamp_idx)
    async with visitor(path) as owner:
        assert (await owner.set_pin("2468")).status_code == 303
    async with visitor(path) as stranger:
        # The form as it was shown before the lock (a locked page has no PIN form).
        csrf = await stranger.csrf()

        async def enter(pin: str) -> httpx.Response:
            return await stranger.http.post(path + "/pin", data={"csrf": csrf, "pin": pin})

        for left in (4, 3, 2, 1):
            wrong = await enter("1111")
            assert wrong.status_code == 403
            assert f"The PIN is wrong. {left} tries left." in wrong.text
        fifth = await enter("1111")
        assert fifth.status_code == 429
        assert fifth.headers["retry-after"] == "900"
        assert "Too many wrong PINs. Try again in 15 min." in fifth.text
        # Locked: even the right PIN is not looked at now.
        right = await enter("2468")
        assert right.status_code == 429 and "Kim Minji" not in right.text
        page = await stranger.get()
        assert 'data-lock="pin"' in page.text and 'name="pin"' not in page.text
        assert (await stamp_row(database_url, stamp_idx)).pin_locked_until is not None

        clock.advance(minutes=14)
        assert (await enter("2468")).status_code == 429
        clock.advance(minutes=1, seconds=1)
        assert (await enter("1111")).status_code == 403  # counting afresh
        opened = await enter("2468")
        assert opened.status_code == 303
        assert "Kim Minji" in (await stranger.get()).text
    row = await stamp_row(database_url, stamp_idx)
    assert row.pin_failures == 0 and row.pin_locked_until is None


async def test_parallel_pin_guesses_get_no_more_tries_than_the_limit(
    api: Api, visitor: VisitorFactory
) -> None:
    path = await page_of(api, await api.stamp(userNm="Kim Minji"))
    async with visitor(path) as owner:
        assert (await owner.set_pin("2468")).status_code == 303
    async with visitor(path) as attacker:
        csrf = await attacker.csrf()
        guesses = [f"{n:04d}" for n in range(1000, 1010)]
        answers = await asyncio.gather(
            *(
                attacker.http.post(path + "/pin", data={"csrf": csrf, "pin": guess})
                for guess in guesses
            )
        )
        statuses = sorted(answer.status_code for answer in answers)
        # Four wrong tries say how many are left; the fifth locks; the rest
        # were never checked.
        assert statuses == [403] * 4 + [429] * 6
        assert sorted(
            re.search(r"(\d) tries left", a.text).group(1)  # type: ignore[union-attr]
            for a in answers
            if a.status_code == 403
        ) == ["1", "2", "3", "4"]
        right = await attacker.http.post(path + "/pin", data={"csrf": csrf, "pin": "2468"})
        assert right.status_code == 429


async def test_reset_pin_clears_it_and_ends_open_sessions(
    api: Api, visitor: VisitorFactory, database_url: str
) -> None:
    stamp_idx = await api.stamp(userNm="Kim Minji")
    path = await page_of(api, stamp_idx)
    async with visitor(path) as phone:
        assert (await phone.set_pin("1357")).status_code == 303
        assert "Kim Minji" in (await phone.get()).text
        await api.ok("PUT", "update", json={"stampIdx": stamp_idx, "resetPinYn": "Y"})
        assert (await stamp_row(database_url, stamp_idx)).pin_hash is None
        after = await phone.get()
        assert "Kim Minji" not in after.text and 'name="pin2"' in after.text
        assert (await phone.set_pin("9753")).status_code == 303
        assert "Kim Minji" in (await phone.get()).text


async def test_forms_without_a_valid_csrf_token_are_refused(
    api: Api, visitor: VisitorFactory, database_url: str
) -> None:
    stamp_idx = await api.stamp()
    other_idx = await api.stamp()
    path = await page_of(api, stamp_idx)
    other_path = await page_of(api, other_idx)
    async with visitor(path) as phone:
        await phone.get()
        form = {"pin": "1234", "pin2": "1234"}
        assert (await phone.http.post(path + "/pin", data=form)).status_code == 403
        bogus = {**form, "csrf": "x" * 40}
        assert (await phone.http.post(path + "/pin", data=bogus)).status_code == 403
        # A token for another stamp's page does not fit this one.
        other_page = await phone.http.get(other_path)
        other_token = re.search(r'name="csrf" value="([^"]+)"', other_page.text)
        assert other_token
        foreign = {**form, "csrf": other_token.group(1)}
        assert (await phone.http.post(path + "/pin", data=foreign)).status_code == 403
        # Nor does a request another site made the browser send.
        cross = await phone.post("/pin", form, headers={"Sec-Fetch-Site": "cross-site"})
        assert cross.status_code == 403
        assert "The form expired" in cross.text
    async with visitor(path) as other_browser:
        # A token taken from one browser does not work with another's cookie.
        token = await other_browser.csrf()
    async with visitor(path) as phone:
        await phone.get()
        assert (
            await phone.http.post(path + "/pin", data={**form, "csrf": token})
        ).status_code == 403
    assert (await stamp_row(database_url, stamp_idx)).pin_hash is None


# --- on-site staff actions ------------------------------------------------------------------


async def test_staff_add_stamps_and_redeem_on_site(api: Api, visitor: VisitorFactory) -> None:
    card_idx = await api.card(maxStamps=2, onsiteYn="Y", onsitePwd="4321")
    stamp_idx = await api.stamp(card_idx)
    path = await page_of(api, stamp_idx)
    async with visitor(path) as counter:
        page = await counter.get()
        assert f'href="{path}/staff"' in page.text
        form = await counter.get("/staff")
        assert form.status_code == 200 and "Add one stamp" in form.text
        assert "On-site password" in form.text

        wrong = await counter.staff("0000")
        assert wrong.status_code == 403
        assert "The on-site password is missing or wrong." in wrong.text
        assert await api.count(stamp_idx) == 0

        added = await counter.staff("4321")
        assert added.status_code == 303 and added.headers["location"] == f"{path}?done=added"
        assert "Stamp added." in (await counter.get("?done=added")).text
        assert await api.count(stamp_idx) == 1
        assert (await counter.staff("4321")).status_code == 303
        complete = await counter.get()
        assert state_of(complete) == "complete"

        offer = await counter.get("/staff")
        assert "Hand over the reward" in offer.text
        assert (await counter.staff("9999")).status_code == 403
        redeemed = await counter.staff("4321")
        assert redeemed.status_code == 303
        assert redeemed.headers["location"] == f"{path}?done=redeemed"
        done = await counter.get("?done=redeemed")
        assert state_of(done) == "used" and "Reward handed over." in done.text
        assert "Nothing to do on this card" in (await counter.get("/staff")).text

    assert await api.code("GET", "validate", params={"stampIdx": stamp_idx}) == 2005
    ledger = await api.history(stamp_idx)
    assert [(e["action"], e["source"], e["stampsAfter"]) for e in ledger] == [
        ("USE", "ONSITE", 2),
        ("ADD", "ONSITE", 2),
        ("ADD", "ONSITE", 1),
        ("CREATE", "API", 0),
    ]


async def test_five_wrong_passwords_lock_on_site_actions(
    api: Api, visitor: VisitorFactory, clock: FrozenClock
) -> None:
    card_idx = await api.card(maxStamps=3, onsiteYn="Y", onsitePwd="4321")
    stamp_idx = await api.stamp(card_idx)
    path = await page_of(api, stamp_idx)
    async with visitor(path) as counter:
        for _ in range(5):
            assert (await counter.staff("0000")).status_code == 403
        locked = await counter.get("/staff")
        assert 'data-lock="onsite"' in locked.text and 'name="password"' not in locked.text
        assert "On-site actions are locked. Try again in 15 min." in locked.text
        # A form shown before the lock is refused with 2010 even with the right password.
        form = await counter.http.post(
            path + "/staff",
            data={
                "csrf": await counter.csrf(),
                "action": "add",
                "expect": "0",
                "password": "4321",
            },
        )
        assert form.status_code == 429 and form.headers["retry-after"] == "900"
        assert "Too many wrong on-site passwords" in form.text
        assert await api.count(stamp_idx) == 0

        clock.advance(minutes=15, seconds=1)
        assert (await counter.staff("4321")).status_code == 303
        assert await api.count(stamp_idx) == 1


async def test_parallel_staff_guesses_get_no_more_tries_than_the_limit(
    api: Api, visitor: VisitorFactory
) -> None:
    card_idx = await api.card(onsiteYn="Y", onsitePwd="4321")
    stamp_idx = await api.stamp(card_idx)
    path = await page_of(api, stamp_idx)
    async with visitor(path) as attacker:
        form = {"csrf": await attacker.csrf("/staff"), "action": "add", "expect": "0"}
        answers = await asyncio.gather(
            *(
                attacker.http.post(path + "/staff", data={**form, "password": f"{n:04d}"})
                for n in range(10)
            )
        )
        assert sorted(answer.status_code for answer in answers) == [403] * 5 + [429] * 5
        right = await attacker.http.post(path + "/staff", data={**form, "password": "4321"})
        assert right.status_code == 429
    assert await api.count(stamp_idx) == 0


async def test_a_staff_form_sent_twice_adds_once(api: Api, visitor: VisitorFactory) -> None:
    card_idx = await api.card(onsiteYn="Y", onsitePwd="4321")
    stamp_idx = await api.stamp(card_idx)
    path = await page_of(api, stamp_idx)
    async with visitor(path) as counter:
        form = {"csrf": await counter.csrf("/staff"), "action": "add", "expect": "0"}
        first = await counter.http.post(path + "/staff", data={**form, "password": "4321"})
        again = await counter.http.post(path + "/staff", data={**form, "password": "4321"})
        assert (first.status_code, again.status_code) == (303, 409)
        assert "The card changed meanwhile" in again.text
    assert await api.count(stamp_idx) == 1


async def test_on_site_actions_need_an_on_site_card(api: Api, visitor: VisitorFactory) -> None:
    stamp_idx = await api.stamp()
    path = await page_of(api, stamp_idx)
    async with visitor(path) as counter:
        assert f"{path}/staff" not in (await counter.get()).text
        page = await counter.get("/staff")
        assert page.status_code == 403
        assert "On-site stamping is not enabled for this card." in page.text
        token = await counter.csrf()  # the staff page has no form here
        sent = await counter.http.post(
            path + "/staff", data={"csrf": token, "action": "add", "password": ""}
        )
        assert sent.status_code == 403
    assert await api.count(stamp_idx) == 0


async def test_on_site_stamps_go_out_as_webhooks(
    api: Api, visitor: VisitorFactory, database_url: str, clock: FrozenClock
) -> None:
    card_idx = await api.card(maxStamps=1, onsiteYn="Y", onsitePwd="4321")
    stamp_idx = await api.stamp(card_idx)
    database = Database(database_url, pool_size=1)
    try:
        async with subscribed(database_url, api):
            async with visitor(await page_of(api, stamp_idx)) as counter:
                assert (await counter.staff("4321")).status_code == 303
                assert (await counter.staff("4321")).status_code == 303  # redeem
            async with database.read() as conn:
                rows = (
                    await conn.execute(
                        select(webhook_message.c.event_type, webhook_message.c.payload)
                        .where(webhook_message.c.stamp_idx == stamp_idx)
                        .order_by(webhook_message.c.message_idx)
                    )
                ).all()
    finally:
        await database.dispose()
    # A message stores the change's record; the outbox renders what is delivered.
    delivered = [(row.event_type, orjson.loads(outbox.deliverable(row.payload))) for row in rows]
    sent = [(event_type, payload["data"]["source"]) for event_type, payload in delivered]
    assert sent == [
        ("stamp.added", "ONSITE"),
        ("stamp.completed", "ONSITE"),
        ("stamp.used", "ONSITE"),
    ]


# --- QR codes and languages -------------------------------------------------------------------


async def test_qr_codes_encode_the_page_url(api: Api, client: httpx.AsyncClient) -> None:
    url = await stamp_url(api, await api.stamp())
    path = page_path(url)
    svg = await client.get(path + "/qr.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content
    png = await client.get(path + "/qr.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    expected = segno.make(url, error="m", micro=False)
    page = await client.get(path)
    path_data = re.search(r'<path class="qrline" stroke="#1c1917" d="([^"]+)"', page.text)
    assert path_data, page.text
    assert path_data.group(1) in expected.svg_inline(dark="#1c1917")


async def test_language_from_accept_language_with_a_switch(
    api: Api, visitor: VisitorFactory
) -> None:
    path = await page_of(api, await api.stamp())
    async with visitor(path) as phone:
        korean = await phone.get(headers={"Accept-Language": "ko-KR,ko;q=0.9,en;q=0.5"})
        assert '<html lang="ko">' in korean.text
        assert "적립 중" in korean.text and 'href="?lang=en"' in korean.text
        english = await phone.get("?lang=en", headers={"Accept-Language": "ko"})
        assert '<html lang="en">' in english.text and "Active" in english.text
        assert "sb_lang=en" in english.headers["set-cookie"]
        remembered = await phone.get(headers={"Accept-Language": "ko"})
        assert '<html lang="en">' in remembered.text
        staff_ko = await phone.get("/staff?lang=ko")
        assert "현장 적립을 사용하지 않습니다" in staff_ko.text
    async with visitor("/s/" + "x" * 32) as stranger:
        missing = await stranger.get(headers={"Accept-Language": "ko"})
        assert missing.status_code == 404 and "페이지를 찾을 수 없습니다" in missing.text


async def test_lockout_limits_come_from_the_settings(
    settings: Settings, clock: FrozenClock, database_url: str
) -> None:
    tight = settings.model_copy(update={"lockout_failures": 2, "lockout_minutes": 3})
    application = create_app(tight, clock=clock)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
            key, account_idx = await new_key(database_url)
            api = Api(http, key, account_idx, clock)
            card_idx = await api.card(maxStamps=1, onsiteYn="Y", onsitePwd="4321")
            stamp_idx = await api.stamp(card_idx)
            path = await page_of(api, stamp_idx)
            customer = Visitor(http, path)
            assert (await customer.set_pin("1234")).status_code == 303
            http.cookies.clear()
            assert (await customer.enter_pin("0000")).status_code == 403
            locked = await customer.enter_pin("0000")
            assert locked.status_code == 429 and "Try again in 3 min." in locked.text
            # The API's redeem has an on-site counter of its own, with the same limit.
            await api.ok("PUT", "update", json={"stampIdx": stamp_idx, "stamps": 1})
            wrong = {"stampIdx": stamp_idx, "onsitePwd": "0000"}
            assert await api.code("PUT", "redeem", json=wrong) == 2009
            assert await api.code("PUT", "redeem", json=wrong) == 2009
            right = {"stampIdx": stamp_idx, "onsitePwd": "4321"}
            assert await api.code("PUT", "redeem", json=right) == 2010
            clock.advance(minutes=3, seconds=1)
            assert await api.code("PUT", "redeem", json=right) == 0
