"""Guessing the on-site password: failures count per card and per client
address, never per stamp link; a stamp that cannot take the action never
checks the password; the page's lock and the API's are separate counters."""

from __future__ import annotations

import asyncio

import httpx

from stampbook.app import create_app
from stampbook.config import Settings
from stampbook.kit.clock import FrozenClock
from tests.conftest import Api, new_key
from tests.page.conftest import (
    Visitor,
    VisitorFactory,
    browser_client,
    loopback_address,
    page_path,
    stamp_url,
)

LOCKED = 'data-lock="onsite"'


async def staff_paths(api: Api, card_idx: int, n: int) -> list[str]:
    """``/s/{token}`` of ``n`` new stamps of the card."""
    return [page_path(await stamp_url(api, await api.stamp(card_idx))) for _ in range(n)]


async def test_wrong_passwords_on_many_stamp_links_share_the_cards_limit(
    api: Api, visitor: VisitorFactory
) -> None:
    card_idx = await api.card(onsiteYn="Y", onsitePwd="4321")
    paths = await staff_paths(api, card_idx, 5)
    for path in paths:  # one guess per link: five links, five guesses
        async with visitor(path) as guesser:
            assert (await guesser.staff("0000")).status_code == 403
    (another,) = await staff_paths(api, card_idx, 1)
    async with visitor(another) as staff:  # the counter, from another address
        page = await staff.get("/staff")
        assert LOCKED in page.text and 'name="password"' not in page.text
        sent = await staff.http.post(
            another + "/staff",
            data={"csrf": await staff.csrf(), "action": "add", "password": "4321"},
        )
        assert sent.status_code == 429
    assert await api.count(int((await api.ok("GET", "list"))["items"][0]["stampIdx"])) == 0


async def test_parallel_guesses_over_many_links_get_no_more_than_the_limit(
    api: Api, visitor: VisitorFactory
) -> None:
    card_idx = await api.card(onsiteYn="Y", onsitePwd="4321")
    paths = await staff_paths(api, card_idx, 10)

    async def guess(path: str, password: str) -> int:
        async with visitor(path) as guesser:
            form = {"csrf": await guesser.csrf("/staff"), "action": "add", "expect": "0"}
            sent = await guesser.http.post(path + "/staff", data={**form, "password": password})
            return sent.status_code

    answers = await asyncio.gather(*(guess(path, f"{n:04d}") for n, path in enumerate(paths)))
    assert sorted(answers) == [403] * 5 + [429] * 5


async def test_a_used_stamp_refuses_before_the_password_is_checked(
    api: Api, visitor: VisitorFactory
) -> None:
    card_idx = await api.card(maxStamps=1, onsiteYn="Y", onsitePwd="4321")
    used = await api.stamp(card_idx)
    await api.add(used)
    await api.ok("PUT", "redeem", json={"stampIdx": used, "onsitePwd": "4321"})
    used_path = page_path(await stamp_url(api, used))
    (fresh,) = await staff_paths(api, card_idx, 1)
    address = loopback_address()
    async with visitor(used_path, address=address) as guesser:
        token = await guesser.csrf()
        for action in ("add", "redeem") * 5:
            sent = await guesser.http.post(
                used_path + "/staff", data={"csrf": token, "action": action, "password": "0000"}
            )
            assert sent.status_code == 409, sent.text
            assert "The reward has already been used." in sent.text
    # Ten tries on the used link cost nothing: the card takes the right password.
    async with visitor(fresh, address=address) as staff:
        assert (await staff.staff("4321")).status_code == 303


async def test_anonymous_guesses_never_lock_the_merchants_api_redeem(
    api: Api, visitor: VisitorFactory
) -> None:
    card_idx = await api.card(maxStamps=1, onsiteYn="Y", onsitePwd="4321")
    stamp_idx = await api.stamp(card_idx)
    path = page_path(await stamp_url(api, stamp_idx))
    async with visitor(path) as guesser:
        for _ in range(5):
            assert (await guesser.staff("0000")).status_code == 403
        assert LOCKED in (await guesser.get("/staff")).text
    await api.add(stamp_idx)
    redeem = {"stampIdx": stamp_idx, "onsitePwd": "4321"}
    assert await api.code("PUT", "redeem", json=redeem) == 0


async def test_the_apis_wrong_passwords_never_lock_the_page(
    api: Api, visitor: VisitorFactory
) -> None:
    card_idx = await api.card(maxStamps=1, onsiteYn="Y", onsitePwd="4321")
    stamp_idx = await api.stamp(card_idx)
    await api.add(stamp_idx)
    wrong = {"stampIdx": stamp_idx, "onsitePwd": "0000"}
    assert [await api.code("PUT", "redeem", json=wrong) for _ in range(5)] == [2009] * 5
    right = {"stampIdx": stamp_idx, "onsitePwd": "4321"}
    assert await api.code("PUT", "redeem", json=right) == 2010  # the API's own lock
    async with visitor(page_path(await stamp_url(api, stamp_idx))) as staff:
        assert LOCKED not in (await staff.get("/staff")).text
        assert (await staff.staff("4321")).status_code == 303  # redeemed on site


async def test_one_address_is_locked_over_all_cards(
    settings: Settings, clock: FrozenClock, database_url: str
) -> None:
    tight = settings.model_copy(update={"lockout_address_failures": 3})
    application = create_app(tight, clock=clock)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            key, account_idx = await new_key(database_url)
            api = Api(http, key, account_idx, clock)
            cards = [await api.card(onsiteYn="Y", onsitePwd=str(n) * 4) for n in (1, 2, 3, 4)]
            paths = [(await staff_paths(api, card, 1))[0] for card in cards]
            address = loopback_address()
            async with browser_client(application, address) as sprayer:
                for path in paths[:3]:  # one guess on each of three cards
                    assert (await Visitor(sprayer, path).staff("0000")).status_code == 403
                # The fourth card's own count is zero, but this address is spent.
                fourth = Visitor(sprayer, paths[3])
                assert LOCKED in (await fourth.get("/staff")).text
                sent = await sprayer.post(
                    paths[3] + "/staff",
                    data={"csrf": await fourth.csrf(), "action": "add", "password": "4444"},
                )
                assert sent.status_code == 429
            async with browser_client(application) as staff:
                assert (await Visitor(staff, paths[3]).staff("4444")).status_code == 303
            clock.advance(minutes=15, seconds=1)
            async with browser_client(application, address) as sprayer:
                assert (await Visitor(sprayer, paths[0]).staff("1111")).status_code == 303
