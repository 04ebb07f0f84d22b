"""The compatible stamp API over HTTP, verb by verb, rule by rule."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from stampbook.db.schema import stamp, stamp_event
from stampbook.kit.db import Database
from tests.conftest import Api

VALIDATE_FIELDS = [
    "stampIdx", "domain", "cardIdx", "cardNm", "cardTtl", "stamps", "maxStamps", "stampUrl",
    "url", "strtYmd", "endYmd", "onsiteYn", "onsitePwd", "memo", "activeYn", "userId", "userNm",
    "userPhnno", "userEml", "userEtc1", "userEtc2", "stampImgUrl", "regYmdt", "payloadVersion",
]  # fmt: skip
# list shows every stamp as validate does, but never the card's on-site password.
LIST_FIELDS = [name for name in VALIDATE_FIELDS if name != "onsitePwd"]


def days(n: int) -> timedelta:
    return timedelta(days=n)


async def view(api: Api, stamp_idx: int) -> dict[str, Any]:
    """The stamp as list shows it (whatever its state)."""
    page = await api.ok("GET", "list", params={"limit": 100})
    return next(item for item in page["items"] if item["stampIdx"] == stamp_idx)


async def stored_row(database_url: str, stamp_idx: int) -> Any:
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            return (await conn.execute(select(stamp).where(stamp.c.stamp_idx == stamp_idx))).first()
    finally:
        await database.dispose()


async def event_count(database_url: str, stamp_idx: int) -> int:
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            rows = await conn.execute(
                select(stamp_event.c.event_idx).where(stamp_event.c.stamp_idx == stamp_idx)
            )
            return len(rows.all())
    finally:
        await database.dispose()


# --- create ---------------------------------------------------------------


async def test_create_answers_the_new_stamp_idx_and_fills_the_defaults(api: Api) -> None:
    card_idx = await api.card(
        cardNm="Americano", maxStamps=12, url="https://shop.example.com", onsiteYn="Y",
        onsitePwd="123456",
    )  # fmt: skip
    stamp_idx = await api.stamp(card_idx, memo="vip")
    response = await api.validate(stamp_idx)
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["code", "message", "result"]
    assert body["code"] == 0 and body["message"] == ""
    result = body["result"]
    assert list(result) == VALIDATE_FIELDS
    assert result["stampIdx"] == stamp_idx and result["cardIdx"] == card_idx
    assert result["cardNm"] == "Americano" and result["maxStamps"] == 12
    assert result["stamps"] == 0 and result["activeYn"] == "Y"
    assert result["domain"] == "https://stamps.example.test"
    assert result["url"] == "https://shop.example.com"
    assert result["onsiteYn"] == "Y" and result["onsitePwd"] == "123456"
    assert result["memo"] == "vip" and result["userNm"] is None
    assert re.fullmatch(r"[A-Za-z0-9]{12}", result["userId"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", result["regYmdt"])
    assert result["strtYmd"] == (api.today - days(1)).isoformat()
    assert result["payloadVersion"] == "v1"
    assert result["stampImgUrl"].startswith("https://")


async def test_the_stamp_url_is_an_unguessable_token_never_the_idx(api: Api) -> None:
    urls = set()
    for _ in range(3):
        stamp_idx = await api.stamp()
        url = (await api.validate(stamp_idx)).json()["result"]["stampUrl"]
        match = re.fullmatch(r"https://stamps\.example\.test/s/([A-Za-z0-9_-]+)", url)
        assert match, url
        token = match.group(1)
        assert len(token) >= 22  # ≥ 128 bits of base64url
        assert token != str(stamp_idx)
        urls.add(url)
    assert len(urls) == 3


async def test_create_keeps_the_given_user_fields_and_domain(api: Api) -> None:
    fields = {
        "userId": "member-42", "userNm": "Kim", "userPhnno": "010-0000-0000",
        "userEml": "kim@example.com", "userEtc1": "a", "userEtc2": "b",
        "domain": "https://loyal.example.com/", "activeYn": "N", "memo": "note",
    }  # fmt: skip
    stamp_idx = await api.stamp(**fields)
    result = await view(api, stamp_idx)
    for name, value in fields.items():
        expected = value.rstrip("/") if name == "domain" else value
        assert result[name] == expected, name
    assert result["stampUrl"].startswith("https://loyal.example.com/s/")


async def test_create_refuses_an_unknown_card(api: Api) -> None:
    body = {"cardIdx": 987654321, "strtYmd": api.today.isoformat(), "endYmd": api.today.isoformat()}
    assert await api.code("POST", "create", json=body) == 2101


async def test_create_refuses_a_period_ending_before_it_starts_or_beyond_five_years(
    api: Api,
) -> None:
    card_idx = await api.card()
    today = api.today
    backwards = {
        "cardIdx": card_idx,
        "strtYmd": today.isoformat(),
        "endYmd": (today - days(1)).isoformat(),
    }
    too_long = {
        "cardIdx": card_idx,
        "strtYmd": today.isoformat(),
        "endYmd": (today + days(5 * 366)).isoformat(),
    }
    assert await api.code("POST", "create", json=backwards) == 2012
    assert await api.code("POST", "create", json=too_long) == 2012
    assert (await api.ok("GET", "list"))["items"] == []


async def test_create_names_each_missing_required_parameter(api: Api) -> None:
    card_idx = await api.card()
    full = {"cardIdx": card_idx, "strtYmd": api.today.isoformat(), "endYmd": api.today.isoformat()}
    for name in full:
        body = {k: v for k, v in full.items() if k != name}
        response = await api.call("POST", "create", json=body)
        assert response.status_code == 400
        assert response.json()["code"] == 1001
        assert name in response.json()["message"]


async def test_create_refuses_impossible_dates_and_bad_flags(api: Api) -> None:
    card_idx = await api.card()
    base = {"cardIdx": card_idx, "strtYmd": api.today.isoformat(), "endYmd": api.today.isoformat()}
    for name, value in [("strtYmd", "2026-02-30"), ("endYmd", "20261231"), ("activeYn", "y"),
                        ("domain", "ftp://x.example"), ("userId", "")]:  # fmt: skip
        response = await api.call("POST", "create", json={**base, name: value})
        assert (response.status_code, response.json()["code"]) == (400, 1001), name
        assert name in response.json()["message"]


# --- validate -------------------------------------------------------------


async def test_validate_refuses_with_the_reason_and_a_null_result(api: Api) -> None:
    card_idx = await api.card()
    today = api.today
    cases = {
        2002: await api.stamp(card_idx, activeYn="N"),
        2003: await api.stamp(card_idx, strtYmd=(today + days(1)).isoformat()),
        2004: await api.stamp(
            card_idx, strtYmd=(today - days(10)).isoformat(), endYmd=(today - days(1)).isoformat()
        ),
    }
    redeemed = await api.stamp(card_idx)
    await api.ok("PUT", "update", json={"stampIdx": redeemed, "useYn": "Y"})
    cases[2005] = redeemed
    cases[2001] = 999_999_999
    for code, stamp_idx in cases.items():
        response = await api.validate(stamp_idx)
        assert response.status_code == 200
        assert response.json()["code"] == code
        assert response.json()["result"] is None
        assert response.json()["message"]


async def test_messages_follow_accept_language(api: Api) -> None:
    en = await api.call("GET", "validate", params={"stampIdx": 999_999_999})
    ko = await api.call(
        "GET",
        "validate",
        params={"stampIdx": 999_999_999},
        headers={"Accept-Language": "ko-KR,ko;q=0.9,en;q=0.8"},
    )
    assert en.json()["message"] == "Stamp not found."
    assert ko.json()["message"] == "스탬프를 찾을 수 없습니다."


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


# --- list and history -----------------------------------------------------


async def test_list_filters_and_pages_newest_first(api: Api) -> None:
    first_card, second_card = await api.card(), await api.card()
    made = [await api.stamp(first_card, userId=f"user-{n % 2}") for n in range(5)]
    other = await api.stamp(second_card, activeYn="N")
    await api.ok("PUT", "update", json={"stampIdx": made[0], "useYn": "Y"})

    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"cardIdx": first_card, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await api.ok("GET", "list", params=params)
        assert len(page["items"]) <= 2
        assert all(list(item) == LIST_FIELDS for item in page["items"])
        seen += [item["stampIdx"] for item in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == sorted(made, reverse=True)

    async def ids(**params: Any) -> list[int]:
        return [i["stampIdx"] for i in (await api.ok("GET", "list", params=params))["items"]]

    assert await ids(userId="user-1") == [made[3], made[1]]
    assert await ids(activeYn="N") == [other]
    assert await ids(useYn="Y") == [made[0]]
    assert await ids(cardIdx=second_card) == [other]


async def test_list_refuses_bad_limits_and_cursors(api: Api) -> None:
    for params in [{"limit": 0}, {"limit": 101}, {"cursor": "not-a-cursor"}, {"activeYn": "X"}]:
        response = await api.call("GET", "list", params=params)
        assert (response.status_code, response.json()["code"]) == (400, 1001), params
        assert next(iter(params)) in response.json()["message"]


async def test_history_pages_the_ledger_newest_first(api: Api) -> None:
    stamp_idx = await api.stamp()
    for _ in range(4):
        await api.add(stamp_idx)
    await api.code("PUT", "remove", json={"stampIdx": stamp_idx})
    first = await api.ok("GET", "history", params={"stampIdx": stamp_idx, "limit": 3})
    assert [e["action"] for e in first["items"]] == ["REMOVE", "ADD", "ADD"]
    assert list(first["items"][0]) == [
        "eventIdx", "stampIdx", "action", "stampsBefore", "stampsAfter", "source", "regYmdt",
    ]  # fmt: skip
    second = await api.ok(
        "GET", "history", params={"stampIdx": stamp_idx, "limit": 3, "cursor": first["nextCursor"]}
    )
    assert [e["action"] for e in second["items"]] == ["ADD", "ADD", "CREATE"]
    assert second["nextCursor"] is None
    events = first["items"] + second["items"]
    assert [e["eventIdx"] for e in events] == sorted((e["eventIdx"] for e in events), reverse=True)
    assert sum(e["stampsAfter"] - e["stampsBefore"] for e in events) == await api.count(stamp_idx)


# --- isolation ------------------------------------------------------------


async def test_another_accounts_stamps_are_simply_not_found(api: Api, other_api: Api) -> None:
    card_idx = await other_api.card(maxStamps=1)
    theirs = await other_api.stamp(card_idx)
    await other_api.add(theirs)
    assert (await api.validate(theirs)).json()["code"] == 2001
    assert await api.add(theirs) == 2001
    assert await api.code("PUT", "remove", json={"stampIdx": theirs}) == 2001
    assert await api.code("PUT", "update", json={"stampIdx": theirs, "memo": "x"}) == 2001
    assert await api.code("PUT", "redeem", json={"stampIdx": theirs}) == 2001
    assert await api.code("GET", "history", params={"stampIdx": theirs}) == 2001
    assert await api.code("DELETE", "delete", params={"stampIdx": theirs}) == 2001
    assert await api.code("GET", "card/get", params={"cardIdx": card_idx}) == 2101
    body = {"cardIdx": card_idx, "strtYmd": api.today.isoformat(), "endYmd": api.today.isoformat()}
    assert await api.code("POST", "create", json=body) == 2101
    assert (await api.ok("GET", "list"))["items"] == []
    assert await other_api.count(theirs) == 1
