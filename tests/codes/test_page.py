"""The customer's page of a code, ``/c/{code}``, over HTTP (JavaScript off):
a phone without a card gets one with the code's stamps; a phone that opened
its card before adds to it in one tap; a used code says so; every refusal
is a page that changes nothing."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI

from tests.codes.conftest import new_code, stored_codes
from tests.conftest import Api
from tests.page.conftest import CSRF_FIELD, browser_client

ADD_BUTTON = re.compile(r'name="card" value="([^"]+)"')


def code_path(created: dict[str, object]) -> str:
    return urlsplit(str(created["url"])).path


async def send(phone: httpx.AsyncClient, path: str, **fields: str) -> httpx.Response:
    """Send the code page's form as the page shows it (its CSRF token)."""
    page = await phone.get(path)
    token = CSRF_FIELD.search(page.text)
    assert token, page.text
    return await phone.post(path, data={"csrf": token.group(1), **fields})


def state(page: httpx.Response) -> str:
    found = re.search(r'class="panel code code-(\w+)"', page.text)
    assert found, page.text
    return found.group(1)


async def test_a_phone_gets_a_card_then_adds_to_it_in_one_tap(
    app: FastAPI, api: Api, database_url: str
) -> None:
    card_idx = await api.card(cardNm="Corner Coffee")
    first, second = await new_code(api, card_idx), await new_code(api, card_idx)

    async with browser_client(app) as phone:
        page = await phone.get(code_path(first))
        assert page.status_code == 200 and state(page) == "live"
        assert "Get a card" in page.text and not ADD_BUTTON.search(page.text)

        got = await send(phone, code_path(first), action="new")
        assert got.status_code == 303
        card_path = urlsplit(got.headers["location"]).path
        assert got.headers["location"] == f"{card_path}?done=enrolled"
        card = await phone.get(got.headers["location"])
        assert 'class="count-now">1<' in card.text
        assert "Choose a PIN" in card.text or "Protect your card with a PIN" in card.text

        offer = await phone.get(code_path(second))
        assert "Add 1 stamp to Corner Coffee (1 / 10)?" in offer.text
        held = ADD_BUTTON.search(offer.text)
        assert held and f"/s/{held.group(1)}" == card_path
        added = await send(phone, code_path(second), action="add", card=held.group(1))
        assert added.status_code == 303
        assert added.headers["location"] == f"{card_path}?done=code"
        assert 'class="count-now">2<' in (await phone.get(card_path)).text

        for used in (first, second):
            again = await phone.get(code_path(used))
            assert again.status_code == 410 and state(again) == "used"
            assert "This code was already used" in again.text
            assert f'href="{card_path}"' in again.text

    [one, two] = await stored_codes(database_url, api.account_idx)
    assert one.used_stamp_idx == two.used_stamp_idx is not None
    history = await api.history(int(one.used_stamp_idx))
    assert [(e["action"], e["source"]) for e in reversed(history)] == [
        ("CREATE", "CODE"),
        ("ADD", "CODE"),
        ("ADD", "CODE"),
    ]


async def test_the_page_speaks_korean(app: FastAPI, api: Api) -> None:
    created = await new_code(api, await api.card(cardNm="커피"))
    async with browser_client(app) as phone:
        page = await phone.get(code_path(created), params={"lang": "ko"})
        assert '<html lang="ko">' in page.text and "카드 받기" in page.text
        await send(phone, code_path(created), action="new")
        used = await phone.get(code_path(created))
        assert "이미 사용된 코드입니다" in used.text


async def test_a_card_of_another_shop_or_card_is_not_offered(
    app: FastAPI, api: Api, other_api: Api
) -> None:
    elsewhere = await new_code(other_api, await other_api.card())
    tea = await new_code(api, await api.card(cardNm="Tea"))
    async with browser_client(app) as phone:
        got = await send(phone, code_path(elsewhere), action="new")
        other_token = urlsplit(got.headers["location"]).path.removeprefix("/s/")
        page = await phone.get(code_path(tea))
        assert not ADD_BUTTON.search(page.text) and "Get a card" in page.text
        # Naming that card anyway finds no card of this shop: nothing changes.
        forced = await send(phone, code_path(tea), action="add", card=other_token)
        assert forced.status_code == 404
    assert (await api.ok("GET", "code/get", params={"codeIdx": tea["codeIdx"]}))["state"] == "live"


async def test_a_form_without_its_csrf_token_changes_nothing(app: FastAPI, api: Api) -> None:
    created = await new_code(api, await api.card())
    async with browser_client(app) as phone:
        await phone.get(code_path(created))
        refused = await phone.post(code_path(created), data={"action": "new"})
        assert refused.status_code == 403 and "The form expired" in refused.text
        forged = await phone.post(code_path(created), data={"action": "new", "csrf": "x"})
        assert forged.status_code == 403
    assert (await api.ok("GET", "code/get", params={"codeIdx": created["codeIdx"]}))[
        "state"
    ] == "live"
    assert (await api.ok("GET", "list"))["items"] == []


async def test_unknown_expired_and_revoked_codes_are_pages_that_say_so(
    app: FastAPI, api: Api
) -> None:
    card_idx = await api.card()
    expiring = await new_code(api, card_idx, ttlSec=30)
    revoked = await new_code(api, card_idx)
    await api.ok("DELETE", "code/delete", params={"codeIdx": revoked["codeIdx"]})
    api.clock.advance(seconds=31)
    async with browser_client(app) as phone:
        for path in ("/c/not-a-code-of-ours-xyz", "/c/short", "/c/x/y"):
            missing = await phone.get(path)
            assert missing.status_code == 404 and "Page not found" in missing.text
        page = await phone.get(code_path(expiring))
        assert page.status_code == 410 and "This code has expired" in page.text
        page = await phone.get(code_path(revoked))
        assert page.status_code == 410 and "The shop cancelled this code" in page.text
        assert "Get a card" not in page.text
        # Posting anyway (a form opened before) is refused with the reason.
        response = await phone.post(code_path(revoked), data={"action": "new"})
        assert response.status_code == 403
    assert (await api.ok("GET", "list"))["items"] == []


async def test_a_full_card_is_refused_on_the_page_and_the_code_stays_live(
    app: FastAPI, api: Api
) -> None:
    card_idx = await api.card(maxStamps=2)
    codes = [await new_code(api, card_idx) for _ in range(3)]
    async with browser_client(app) as phone:
        await send(phone, code_path(codes[0]), action="new")
        token = ADD_BUTTON.search((await phone.get(code_path(codes[1]))).text)
        assert token
        await send(phone, code_path(codes[1]), action="add", card=token.group(1))
        # The card is full: no add is offered, and forcing it is refused (409).
        page = await phone.get(code_path(codes[2]))
        assert not ADD_BUTTON.search(page.text)
        refused = await send(phone, code_path(codes[2]), action="add", card=token.group(1))
        assert refused.status_code == 409
        assert "The stamp card already has its maximum number of stamps." in refused.text
    assert (await api.ok("GET", "code/get", params={"codeIdx": codes[2]["codeIdx"]}))[
        "state"
    ] == "live"


async def test_a_forged_cards_cookie_is_ignored(app: FastAPI, api: Api) -> None:
    created = await new_code(api, await api.card())
    async with browser_client(app) as phone:
        phone.cookies.set("sb_cards", "forged.value", domain="testserver", path="/")
        page = await phone.get(code_path(created))
        assert page.status_code == 200 and not ADD_BUTTON.search(page.text)


async def test_the_daily_limit_holds_for_staff_on_site_and_a_renewed_page_links_onward(
    app: FastAPI, api: Api
) -> None:
    card_idx = await api.card(
        maxStamps=2, onsiteYn="Y", onsitePwd="4321", maxAddsPerDay=1, autoRenewYn="Y"
    )
    stamp_idx = await api.stamp(card_idx)
    listed = (await api.ok("GET", "list"))["items"]
    path = urlsplit(next(i["stampUrl"] for i in listed if i["stampIdx"] == stamp_idx)).path
    async with browser_client(app) as counter:

        async def staff() -> httpx.Response:
            page = await counter.get(f"{path}/staff")
            fields = dict(re.findall(r'name="(csrf|action|expect)" value="([^"]+)"', page.text))
            return await counter.post(f"{path}/staff", data={**fields, "password": "4321"})

        assert (await staff()).status_code == 303
        refused = await staff()
        assert refused.status_code == 409
        assert "limit of stamps per day has been reached" in refused.text
        assert await api.count(stamp_idx) == 1

        api.clock.advance(days=1)
        assert (await staff()).status_code == 303  # fills the card
        assert (await staff()).status_code == 303  # redeems it: the next card is issued
        page = await counter.get(path)
        nxt = re.search(
            r'<a class="button primary" href="(/s/[^"]+)">Open your next card</a>', page.text
        )
        assert nxt and nxt.group(1) != path
        renewed = await counter.get(nxt.group(1))
        assert renewed.status_code == 200 and 'class="count-now">0<' in renewed.text
