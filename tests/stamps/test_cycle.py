"""The documented cycle, end to end: create → add … → validate → redeem → create the next."""

from __future__ import annotations

from tests.conftest import Api


async def test_a_card_fills_up_is_redeemed_and_the_next_cycle_starts(api: Api) -> None:
    card_idx = await api.card(maxStamps=3)
    stamp_idx = await api.stamp(card_idx)

    for _ in range(3):
        assert await api.add(stamp_idx) == 0
    assert await api.add(stamp_idx) == 2006

    view = (await api.validate(stamp_idx)).json()["result"]
    assert view["stamps"] == view["maxStamps"] == 3

    await api.ok("PUT", "redeem", json={"stampIdx": stamp_idx})
    assert await api.code("GET", "validate", params={"stampIdx": stamp_idx}) == 2005

    next_idx = await api.stamp(card_idx)
    assert next_idx != stamp_idx
    assert await api.add(next_idx) == 0
