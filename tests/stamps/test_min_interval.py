"""minIntervalSec: an add within that many seconds of the stamp's previous add is 2011.

The check is part of the add's conditional UPDATE (see test_concurrency for the
race); here a frozen clock walks across the boundary.
"""

from __future__ import annotations

from stampbook.kit.clock import FrozenClock
from tests.conftest import Api


async def test_an_add_inside_the_interval_is_too_soon(api: Api, clock: FrozenClock) -> None:
    stamp_idx = await api.stamp(await api.card(minIntervalSec=60))
    assert await api.add(stamp_idx) == 0

    clock.advance(seconds=59, milliseconds=999)
    assert await api.add(stamp_idx) == 2011
    assert await api.count(stamp_idx) == 1

    clock.advance(milliseconds=1)
    assert await api.add(stamp_idx) == 0
    assert await api.count(stamp_idx) == 2


async def test_the_interval_runs_from_the_last_accepted_add(api: Api, clock: FrozenClock) -> None:
    stamp_idx = await api.stamp(await api.card(minIntervalSec=60))
    assert await api.add(stamp_idx) == 0
    clock.advance(seconds=30)
    assert await api.add(stamp_idx) == 2011  # refused: does not restart the interval

    clock.advance(seconds=30)
    assert await api.add(stamp_idx) == 0


async def test_the_default_interval_is_zero(api: Api) -> None:
    card_idx = await api.card()
    assert (await api.ok("GET", "card/get", params={"cardIdx": card_idx}))["minIntervalSec"] == 0
    stamp_idx = await api.stamp(card_idx)

    assert [await api.add(stamp_idx) for _ in range(3)] == [0, 0, 0]


async def test_too_soon_is_checked_after_the_card_is_full(api: Api) -> None:
    stamp_idx = await api.stamp(await api.card(maxStamps=1, minIntervalSec=3600))
    assert await api.add(stamp_idx) == 0

    assert await api.add(stamp_idx) == 2006


async def test_a_remove_does_not_reopen_the_interval(api: Api, clock: FrozenClock) -> None:
    stamp_idx = await api.stamp(await api.card(minIntervalSec=60))
    assert await api.add(stamp_idx) == 0
    assert await api.code("PUT", "remove", json={"stampIdx": stamp_idx}) == 0

    assert await api.add(stamp_idx) == 2011


async def test_changing_the_card_interval_applies_at_once(api: Api, clock: FrozenClock) -> None:
    card_idx = await api.card()
    stamp_idx = await api.stamp(card_idx)
    assert await api.add(stamp_idx) == 0

    await api.ok("PUT", "card/update", json={"cardIdx": card_idx, "minIntervalSec": 600})
    clock.advance(seconds=599)
    assert await api.add(stamp_idx) == 2011
    clock.advance(seconds=1)
    assert await api.add(stamp_idx) == 0


async def test_a_too_soon_refusal_is_replayed_for_its_key(api: Api, clock: FrozenClock) -> None:
    stamp_idx = await api.stamp(await api.card(minIntervalSec=60))
    assert await api.add(stamp_idx) == 0
    key = {"Idempotency-Key": "second-scan"}

    assert await api.add(stamp_idx, headers=key) == 2011
    clock.advance(seconds=120)
    assert await api.add(stamp_idx, headers=key) == 2011  # the first answer, replayed
    assert await api.add(stamp_idx) == 0
