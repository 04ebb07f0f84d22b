"""The stamp API over HTTP: create fills the defaults and refuses what the rules
forbid, validate answers the reason of a refusal, list and history page
newest first, and another account's stamps are simply not found."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import Api
from tests.stamps.conftest import LIST_FIELDS, VALIDATE_FIELDS, days, view

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
        "codeIdx",
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
