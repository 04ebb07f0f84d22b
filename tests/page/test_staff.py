"""The staff's on-site actions over HTTP: add and redeem with the card's
password, wrong passwords lock (never more tries than the limit, even in
parallel), a form sent twice adds once, only on-site cards take actions,
and on-site stamps go out as webhooks."""

from __future__ import annotations

import asyncio

import orjson
from sqlalchemy import select

from stampbook.db.schema import webhook_message
from stampbook.kit.clock import FrozenClock
from stampbook.kit.db import Database
from stampbook.webhooks import outbox
from tests.conftest import Api, subscribed
from tests.page.conftest import (
    VisitorFactory,
    page_of,
    shown_state,
)

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
        assert shown_state(complete) == "complete"

        offer = await counter.get("/staff")
        assert "Hand over the reward" in offer.text
        assert (await counter.staff("9999")).status_code == 403
        redeemed = await counter.staff("4321")
        assert redeemed.status_code == 303
        assert redeemed.headers["location"] == f"{path}?done=redeemed"
        done = await counter.get("?done=redeemed")
        assert shown_state(done) == "used" and "Reward handed over." in done.text
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
