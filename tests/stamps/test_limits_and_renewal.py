"""The card's fraud controls and the next cycle, over HTTP: ``maxAddsPerDay``
refuses (2015) the add that would pass the day's limit on every path, the
day being the account's; ``autoRenewYn`` issues the customer's next stamp
when a card is redeemed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from stampbook.db.schema import account
from stampbook.kit.db import Database
from tests.codes.conftest import claim, new_code
from tests.conftest import Api
from tests.stamps.conftest import stored_row, view


async def test_max_adds_per_day_refuses_the_add_past_the_limit_until_the_next_day(
    api: Api, database_url: str
) -> None:
    stamp_idx = await api.stamp(await api.card(maxAddsPerDay=2))
    assert [await api.add(stamp_idx) for _ in range(3)] == [0, 0, 2015]
    response = await api.call("PUT", "add", json={"stampIdx": stamp_idx})
    assert response.status_code == 200
    assert response.json()["message"] == (
        "The card's limit of stamps per day has been reached for this stamp."
    )
    ko = await api.call(
        "PUT", "add", json={"stampIdx": stamp_idx}, headers={"Accept-Language": "ko"}
    )
    assert ko.json()["message"] == "이 스탬프는 카드의 하루 적립 한도에 도달했습니다."
    assert await api.count(stamp_idx) == 2
    row = await stored_row(database_url, stamp_idx)
    assert (row.day_ymd, row.day_adds) == (api.today, 2)

    api.clock.advance(days=1)
    assert await api.add(stamp_idx) == 0
    assert (await stored_row(database_url, stamp_idx)).day_adds == 1


async def test_the_limit_counts_per_stamp_and_zero_means_none(api: Api) -> None:
    limited = await api.card(maxAddsPerDay=1)
    first, second = await api.stamp(limited), await api.stamp(limited)
    assert [await api.add(first), await api.add(first), await api.add(second)] == [0, 2015, 0]
    unlimited = await api.stamp(await api.card())
    assert {await api.add(unlimited) for _ in range(5)} == {0}


async def test_the_day_is_the_accounts(api: Api, database_url: str) -> None:
    # 23:30 UTC is already tomorrow in Seoul: one more add is allowed there.
    database = Database(database_url, pool_size=1)
    try:
        async with database.write() as conn:
            await conn.execute(
                update(account)
                .where(account.c.account_idx == api.account_idx)
                .values(timezone="Asia/Seoul")
            )
    finally:
        await database.dispose()
    api.clock.at = datetime.now(UTC).replace(hour=14, minute=30, second=0, microsecond=0)
    stamp_idx = await api.stamp(await api.card(maxAddsPerDay=1))
    assert [await api.add(stamp_idx), await api.add(stamp_idx)] == [0, 2015]
    api.clock.advance(hours=1)  # 15:30 UTC is 00:30 the next day in Seoul
    assert await api.add(stamp_idx) == 0


async def test_a_code_worth_more_than_the_day_has_left_is_refused_and_stays_unclaimed(
    api: Api,
) -> None:
    card_idx = await api.card(maxAddsPerDay=2)
    stamp_idx = await api.stamp(card_idx)
    assert await api.add(stamp_idx) == 0
    created = await new_code(api, card_idx, stamps=2, ttlSec=3 * 86_400)
    assert await claim(api, created["code"], stamp_idx) == 2015
    assert (await api.ok("GET", "code/get", params={"codeIdx": created["codeIdx"]}))[
        "state"
    ] == "live"
    api.clock.advance(days=1)
    assert await claim(api, created["code"], stamp_idx) == 0
    assert await api.count(stamp_idx) == 3


async def test_card_fields_are_checked_and_updated(api: Api) -> None:
    for field, value in (("maxAddsPerDay", -1), ("suspiciousAddsPerDay", "3"),
                         ("autoRenewYn", "yes")):  # fmt: skip
        response = await api.call(
            "POST", "card/create", json={"cardNm": "x", "maxStamps": 3, field: value}
        )
        assert response.status_code == 400 and field in response.json()["message"]
    card_idx = await api.card()
    card = await api.ok("GET", "card/get", params={"cardIdx": card_idx})
    assert (card["autoRenewYn"], card["maxAddsPerDay"], card["suspiciousAddsPerDay"]) == (
        "N",
        0,
        0,
    )
    await api.ok(
        "PUT",
        "card/update",
        json={"cardIdx": card_idx, "autoRenewYn": "Y", "maxAddsPerDay": 1,
              "suspiciousAddsPerDay": 5},
    )  # fmt: skip
    card = await api.ok("GET", "card/get", params={"cardIdx": card_idx})
    assert (card["autoRenewYn"], card["maxAddsPerDay"], card["suspiciousAddsPerDay"]) == (
        "Y",
        1,
        5,
    )
    stamp_idx = await api.stamp(card_idx)
    assert [await api.add(stamp_idx), await api.add(stamp_idx)] == [0, 2015]


# --- the next cycle -------------------------------------------------------------


async def test_redeeming_a_renewing_card_issues_the_next_stamp_for_the_same_customer(
    api: Api, database_url: str
) -> None:
    card_idx = await api.card(maxStamps=2, autoRenewYn="Y")
    today = api.today
    stamp_idx = await api.stamp(
        card_idx,
        userId="member-7",
        userNm="Kim",
        userPhnno="010-1234",
        memo="regular",
        strtYmd=(today - timedelta(days=10)).isoformat(),
        endYmd=(today + timedelta(days=20)).isoformat(),
    )
    await api.add(stamp_idx)
    await api.add(stamp_idx)

    response = await api.call("PUT", "redeem", json={"stampIdx": stamp_idx})
    # The redeem's wire result is the contract's: nothing more.
    assert response.json() == {"code": 0, "message": "", "result": None}

    redeemed = await stored_row(database_url, stamp_idx)
    assert redeemed.use_yn == "Y" and redeemed.next_stamp_idx is not None
    renewed = await view(api, redeemed.next_stamp_idx)
    assert renewed["cardIdx"] == card_idx and renewed["stamps"] == 0
    assert (renewed["userId"], renewed["userNm"], renewed["userPhnno"], renewed["memo"]) == (
        "member-7",
        "Kim",
        "010-1234",
        "regular",
    )
    # Its period starts today and is as long as the redeemed one's (30 days).
    assert renewed["strtYmd"] == today.isoformat()
    assert renewed["endYmd"] == (today + timedelta(days=30)).isoformat()
    assert [e["action"] for e in await api.history(redeemed.next_stamp_idx)] == ["CREATE"]
    assert next(e["action"] for e in await api.history(stamp_idx)) == "USE"


async def test_a_redemption_by_update_renews_as_redeem_does(api: Api, database_url: str) -> None:
    # useYn = Y through /update is a redemption too (the contract's other way).
    stamp_idx = await api.stamp(await api.card(maxStamps=1, autoRenewYn="Y"), userId="member-9")
    await api.add(stamp_idx)
    await api.ok("PUT", "update", json={"stampIdx": stamp_idx, "useYn": "Y"})
    redeemed = await stored_row(database_url, stamp_idx)
    assert redeemed.use_yn == "Y" and redeemed.next_stamp_idx is not None
    renewed = await api.ok("GET", "validate", params={"stampIdx": redeemed.next_stamp_idx})
    assert (renewed["userId"], renewed["stamps"]) == ("member-9", 0)
    # Once: a second update of the redeemed stamp issues no third card.
    await api.ok("PUT", "update", json={"stampIdx": stamp_idx, "memo": "thanks"})
    found = await api.ok("GET", "list", params={"limit": 100, "userId": "member-9"})
    assert len(found["items"]) == 2


async def test_a_card_without_renewal_issues_nothing(api: Api, database_url: str) -> None:
    stamp_idx = await api.stamp(await api.card(maxStamps=1))
    await api.add(stamp_idx)
    before = len((await api.ok("GET", "list", params={"limit": 100}))["items"])
    await api.ok("PUT", "redeem", json={"stampIdx": stamp_idx})
    assert len((await api.ok("GET", "list", params={"limit": 100}))["items"]) == before
    assert (await stored_row(database_url, stamp_idx)).next_stamp_idx is None


async def test_a_refused_redeem_renews_nothing(api: Api) -> None:
    stamp_idx = await api.stamp(await api.card(maxStamps=2, autoRenewYn="Y"))
    await api.add(stamp_idx)
    assert await api.code("PUT", "redeem", json={"stampIdx": stamp_idx}) == 2008
    assert len((await api.ok("GET", "list", params={"limit": 100}))["items"]) == 1
