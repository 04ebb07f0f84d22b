"""The customer's PIN over HTTP: chosen once and then asked for, wrong PINs
lock the page (never more tries than the limit, even in parallel), a reset
ends open sessions, forms need a valid CSRF token, and the lockout limits
come from the settings."""

from __future__ import annotations

import asyncio
import re

import httpx

from stampbook.app import create_app
from stampbook.config import Settings
from stampbook.kit.clock import FrozenClock
from tests.conftest import Api, new_key
from tests.page.conftest import (
    Visitor,
    VisitorFactory,
    page_of,
    stamp_row,
)

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
