"""The stamp API over HTTP: add adds exactly one stamp within the card's rules,
remove takes one back, and redeem spends a complete card once (with the
staff's password on an on-site card)."""

from __future__ import annotations

from sqlalchemy import select

from stampbook.kit.db import Database
from tests.conftest import Api
from tests.stamps.conftest import days, event_count, stored_row

# --- add ------------------------------------------------------------------


async def test_add_adds_exactly_one_stamp_and_logs_it(api: Api) -> None:
    stamp_idx = await api.stamp()
    response = await api.call("PUT", "add", json={"stampIdx": stamp_idx})
    assert response.status_code == 200
    assert response.json() == {"code": 0, "message": "", "result": None}
    assert await api.count(stamp_idx) == 1
    latest = (await api.history(stamp_idx))[0]
    assert (latest["action"], latest["stampsBefore"], latest["stampsAfter"]) == ("ADD", 0, 1)
    assert latest["source"] == "API"


async def test_add_stops_at_max_stamps_and_the_refusal_changes_nothing(
    api: Api, database_url: str
) -> None:
    stamp_idx = await api.stamp(await api.card(maxStamps=2))
    assert [await api.add(stamp_idx) for _ in range(3)] == [0, 0, 2006]
    assert await api.count(stamp_idx) == 2
    assert await event_count(database_url, stamp_idx) == 3  # CREATE + 2 ADD


async def test_add_is_refused_on_inactive_not_started_expired_and_redeemed_stamps(
    api: Api, database_url: str
) -> None:
    card_idx = await api.card()
    today = api.today
    inactive = await api.stamp(card_idx, activeYn="N")
    not_started = await api.stamp(card_idx, strtYmd=(today + days(2)).isoformat())
    expired = await api.stamp(
        card_idx, strtYmd=(today - days(9)).isoformat(), endYmd=(today - days(1)).isoformat()
    )
    redeemed = await api.stamp(card_idx)
    await api.ok("PUT", "update", json={"stampIdx": redeemed, "useYn": "Y"})
    for stamp_idx, code in [
        (inactive, 2002),
        (not_started, 2003),
        (expired, 2004),
        (redeemed, 2005),
    ]:
        before = await stored_row(database_url, stamp_idx)
        assert await api.add(stamp_idx) == code
        after = await stored_row(database_url, stamp_idx)
        assert after == before


async def test_the_validity_period_follows_the_accounts_time_zone(
    api: Api, database_url: str
) -> None:
    from datetime import UTC, datetime

    from stampbook.accounts import service as accounts
    from stampbook.db.schema import account

    # 16:00 UTC on 1 Jan is already 01:00 on 2 Jan in Seoul.
    api.clock.at = datetime(2026, 1, 1, 16, 0, tzinfo=UTC)
    card_idx = await api.card()
    starts_tomorrow_utc = await api.stamp(card_idx, strtYmd="2026-01-02", endYmd="2026-12-31")
    assert await api.add(starts_tomorrow_utc) == 2003

    database = Database(database_url, pool_size=1)
    try:
        async with database.write() as conn:
            name = (await conn.execute(
                select(account.c.name).where(account.c.account_idx == api.account_idx)
            )).scalar_one()  # fmt: skip
            await accounts.set_account_options(conn, name=name, timezone="Asia/Seoul")
    finally:
        await database.dispose()
    assert await api.add(starts_tomorrow_utc) == 0


async def test_min_interval_refuses_a_second_add_too_soon(api: Api) -> None:
    stamp_idx = await api.stamp(await api.card(minIntervalSec=60))
    assert await api.add(stamp_idx) == 0
    api.clock.advance(seconds=59)
    assert await api.add(stamp_idx) == 2011
    api.clock.advance(seconds=1)
    assert await api.add(stamp_idx) == 0
    assert await api.count(stamp_idx) == 2


# --- remove ---------------------------------------------------------------


async def test_remove_takes_one_back_and_never_goes_below_zero(api: Api) -> None:
    stamp_idx = await api.stamp()
    await api.add(stamp_idx)
    assert await api.code("PUT", "remove", json={"stampIdx": stamp_idx}) == 0
    assert await api.code("PUT", "remove", json={"stampIdx": stamp_idx}) == 2007
    assert await api.count(stamp_idx) == 0
    actions = [
        (e["action"], e["stampsBefore"], e["stampsAfter"]) for e in await api.history(stamp_idx)
    ]
    assert actions == [("REMOVE", 1, 0), ("ADD", 0, 1), ("CREATE", 0, 0)]


async def test_remove_undoes_a_mistake_even_on_an_expired_or_inactive_stamp(api: Api) -> None:
    stamp_idx = await api.stamp()
    await api.add(stamp_idx)
    await api.ok("PUT", "update", json={"stampIdx": stamp_idx, "activeYn": "N"})
    assert await api.code("PUT", "remove", json={"stampIdx": stamp_idx}) == 0


async def test_remove_is_refused_once_the_reward_is_used(api: Api) -> None:
    stamp_idx = await api.stamp()
    await api.add(stamp_idx)
    await api.ok("PUT", "update", json={"stampIdx": stamp_idx, "useYn": "Y"})
    assert await api.code("PUT", "remove", json={"stampIdx": stamp_idx}) == 2005
    assert await api.code("PUT", "remove", json={"stampIdx": 999_999_999}) == 2001


# --- redeem ---------------------------------------------------------------


async def test_redeem_needs_a_complete_card_and_happens_once(api: Api) -> None:
    stamp_idx = await api.stamp(await api.card(maxStamps=2))
    await api.add(stamp_idx)
    assert await api.code("PUT", "redeem", json={"stampIdx": stamp_idx}) == 2008
    await api.add(stamp_idx)
    assert await api.code("PUT", "redeem", json={"stampIdx": stamp_idx}) == 0
    assert await api.code("PUT", "redeem", json={"stampIdx": stamp_idx}) == 2005
    latest = (await api.history(stamp_idx))[0]
    assert (latest["action"], latest["stampsBefore"], latest["stampsAfter"]) == ("USE", 2, 2)


async def test_redeem_of_an_onsite_card_needs_the_staff_password(api: Api) -> None:
    card_idx = await api.card(maxStamps=1, onsiteYn="Y", onsitePwd="4321")
    stamp_idx = await api.stamp(card_idx)
    await api.add(stamp_idx)
    assert await api.code("PUT", "redeem", json={"stampIdx": stamp_idx}) == 2009
    assert (
        await api.code("PUT", "redeem", json={"stampIdx": stamp_idx, "onsitePwd": "0000"}) == 2009
    )
    assert await api.code("PUT", "redeem", json={"stampIdx": stamp_idx, "onsitePwd": "4321"}) == 0


async def test_wrong_onsite_passwords_lock_redeem_for_a_while(api: Api) -> None:
    card_idx = await api.card(maxStamps=1, onsiteYn="Y", onsitePwd="4321")
    stamp_idx = await api.stamp(card_idx)
    await api.add(stamp_idx)
    wrong = {"stampIdx": stamp_idx, "onsitePwd": "bad"}
    right = {"stampIdx": stamp_idx, "onsitePwd": "4321"}
    assert [await api.code("PUT", "redeem", json=wrong) for _ in range(5)] == [2009] * 5
    assert await api.code("PUT", "redeem", json=right) == 2010
    api.clock.advance(minutes=15, seconds=1)
    assert await api.code("PUT", "redeem", json=right) == 0
