"""Changing a card's maxStamps while tills are stamping never leaves a stamp
above the new maximum (on PostgreSQL a stale joined card row could)."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from stampbook.cards import service as cards
from stampbook.cards.schemas import UpdateCard
from stampbook.kit.context import CallContext, zone_for
from stampbook.stamps import service as stamps
from tests.conftest import Api

WAIT = 0.3  # long enough for a request that is not blocked to finish


def context(app: FastAPI, api: Api) -> CallContext:
    runtime = app.state.runtime
    return CallContext(
        account_idx=api.account_idx,
        zone=zone_for("UTC"),
        now=runtime.clock.now(),
        public_url=runtime.settings.public_url,
    )


async def stamp_at(api: Api, count: int, max_stamps: int) -> tuple[int, int]:
    card_idx = await api.card(maxStamps=max_stamps)
    stamp_idx = await api.stamp(card_idx)
    await api.ok("PUT", "update", json={"stampIdx": stamp_idx, "stamps": count})
    return card_idx, stamp_idx


async def test_an_add_waits_for_a_lowered_maximum_and_then_respects_it(
    app: FastAPI, api: Api
) -> None:
    card_idx, stamp_idx = await stamp_at(api, count=4, max_stamps=5)
    async with app.state.runtime.db.write() as conn:
        await cards.update(conn, context(app, api), UpdateCard(cardIdx=card_idx, maxStamps=4))
        add = asyncio.create_task(api.add(stamp_idx))
        await asyncio.sleep(WAIT)
        assert not add.done(), "the add ran against the old maximum"
    assert await add == 2006
    assert await api.count(stamp_idx) == 4


async def test_lowering_waits_for_an_add_in_flight_and_then_refuses(app: FastAPI, api: Api) -> None:
    card_idx, stamp_idx = await stamp_at(api, count=4, max_stamps=5)
    async with app.state.runtime.db.write() as conn:
        await stamps.add(conn, context(app, api), stamp_idx=stamp_idx)
        lower = asyncio.create_task(
            api.code("PUT", "card/update", json={"cardIdx": card_idx, "maxStamps": 4})
        )
        await asyncio.sleep(WAIT)
        assert not lower.done(), "the maximum was lowered under an uncommitted add"
    assert await lower == 2103
    assert await api.count(stamp_idx) == 5
    card = await api.ok("GET", "card/get", params={"cardIdx": card_idx})
    assert card["maxStamps"] == 5


async def test_a_stamp_issued_or_moved_takes_the_cards_current_maximum(api: Api) -> None:
    card_idx, stamp_idx = await stamp_at(api, count=3, max_stamps=3)
    await api.ok("PUT", "card/update", json={"cardIdx": card_idx, "maxStamps": 4})
    assert await api.add(stamp_idx) == 0
    assert await api.add(stamp_idx) == 2006
    other = await api.card(maxStamps=6)
    await api.ok("PUT", "update", json={"stampIdx": stamp_idx, "cardIdx": other})
    assert [await api.add(stamp_idx) for _ in range(3)] == [0, 0, 2006]
