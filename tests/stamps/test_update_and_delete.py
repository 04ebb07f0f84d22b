"""The stamp API over HTTP: update changes only the fields sent, within the
rules, and delete is permanent."""

from __future__ import annotations

from stampbook.db.schema import stamp
from stampbook.kit.db import Database
from tests.conftest import Api
from tests.stamps.conftest import days, event_count, stored_row, view

# --- update ---------------------------------------------------------------


async def test_update_changes_only_the_fields_sent(api: Api) -> None:
    stamp_idx = await api.stamp(memo="keep", userNm="Lee")
    before = await view(api, stamp_idx)
    await api.ok("PUT", "update", json={"stampIdx": stamp_idx, "userPhnno": "010-1111-2222"})
    after = await view(api, stamp_idx)
    assert after == {**before, "userPhnno": "010-1111-2222"}


async def test_update_can_clear_an_optional_field_with_null(api: Api) -> None:
    stamp_idx = await api.stamp(memo="temporary")
    await api.ok("PUT", "update", json={"stampIdx": stamp_idx, "memo": None})
    assert (await view(api, stamp_idx))["memo"] is None


async def test_update_sets_the_count_within_zero_and_max(api: Api) -> None:
    stamp_idx = await api.stamp(await api.card(maxStamps=5))
    await api.ok("PUT", "update", json={"stampIdx": stamp_idx, "stamps": 5})
    assert await api.count(stamp_idx) == 5
    assert await api.code("PUT", "update", json={"stampIdx": stamp_idx, "stamps": 6}) == 2006
    response = await api.call("PUT", "update", json={"stampIdx": stamp_idx, "stamps": -1})
    assert (response.status_code, response.json()["code"]) == (400, 1001)
    assert "stamps" in response.json()["message"]
    assert await api.count(stamp_idx) == 5
    latest = (await api.history(stamp_idx))[0]
    assert (latest["action"], latest["stampsBefore"], latest["stampsAfter"]) == ("UPDATE", 0, 5)


async def test_update_moves_a_stamp_to_another_card_of_the_account(
    api: Api, other_api: Api
) -> None:
    stamp_idx = await api.stamp(await api.card(maxStamps=10))
    await api.ok("PUT", "update", json={"stampIdx": stamp_idx, "stamps": 4})
    small = await api.card(cardNm="Small", maxStamps=3)
    big = await api.card(cardNm="Big", maxStamps=20)
    foreign = await other_api.card()
    assert await api.code("PUT", "update", json={"stampIdx": stamp_idx, "cardIdx": small}) == 2006
    assert await api.code("PUT", "update", json={"stampIdx": stamp_idx, "cardIdx": foreign}) == 2101
    await api.ok("PUT", "update", json={"stampIdx": stamp_idx, "cardIdx": big})
    moved = await view(api, stamp_idx)
    assert (moved["cardIdx"], moved["cardNm"], moved["maxStamps"]) == (big, "Big", 20)


async def test_update_use_yn_spends_the_stamp(api: Api) -> None:
    stamp_idx = await api.stamp()
    await api.ok("PUT", "update", json={"stampIdx": stamp_idx, "useYn": "Y"})
    assert (await api.validate(stamp_idx)).json()["code"] == 2005
    assert await api.add(stamp_idx) == 2005
    assert [e["action"] for e in await api.history(stamp_idx)][:2] == ["USE", "UPDATE"]


async def test_update_reset_pin_clears_the_customer_pin(api: Api, database_url: str) -> None:
    from sqlalchemy import update

    stamp_idx = await api.stamp()
    database = Database(database_url, pool_size=1)
    try:
        async with database.write() as conn:
            await conn.execute(
                update(stamp)
                .where(stamp.c.stamp_idx == stamp_idx)
                .values(pin_hash="x", pin_failures=3)
            )
    finally:
        await database.dispose()
    await api.ok("PUT", "update", json={"stampIdx": stamp_idx, "resetPinYn": "Y"})
    row = await stored_row(database_url, stamp_idx)
    assert row.pin_hash is None and row.pin_failures == 0
    assert "pin" not in str((await api.validate(stamp_idx)).json()).lower().replace("onsitepwd", "")


async def test_update_checks_the_period_against_the_other_date(api: Api) -> None:
    stamp_idx = await api.stamp()
    yesterday = (api.today - days(2)).isoformat()
    assert (
        await api.code("PUT", "update", json={"stampIdx": stamp_idx, "endYmd": yesterday}) == 2012
    )
    new_end = (api.today + days(30)).isoformat()
    await api.ok("PUT", "update", json={"stampIdx": stamp_idx, "endYmd": new_end})
    assert (await view(api, stamp_idx))["endYmd"] == new_end


async def test_update_refuses_null_for_a_field_that_cannot_be_empty(api: Api) -> None:
    stamp_idx = await api.stamp()
    for name in ["stamps", "cardIdx", "strtYmd", "activeYn", "useYn", "userId"]:
        response = await api.call("PUT", "update", json={"stampIdx": stamp_idx, name: None})
        assert (response.status_code, response.json()["code"]) == (400, 1001), name
        assert name in response.json()["message"]


async def test_update_of_an_unknown_stamp_is_not_found(api: Api) -> None:
    assert await api.code("PUT", "update", json={"stampIdx": 999_999_999, "memo": "x"}) == 2001


# --- delete ---------------------------------------------------------------


async def test_delete_is_permanent_and_takes_the_history_with_it(
    api: Api, database_url: str
) -> None:
    stamp_idx = await api.stamp()
    await api.add(stamp_idx)
    response = await api.call("DELETE", "delete", params={"stampIdx": stamp_idx})
    assert response.json() == {"code": 0, "message": "", "result": None}
    assert (await api.validate(stamp_idx)).json()["code"] == 2001
    assert await api.code("GET", "history", params={"stampIdx": stamp_idx}) == 2001
    assert await api.code("DELETE", "delete", params={"stampIdx": stamp_idx}) == 2001
    assert await event_count(database_url, stamp_idx) == 0
