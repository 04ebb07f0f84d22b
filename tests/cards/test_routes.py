"""The card extension: create, update, get, list, delete."""

from __future__ import annotations

from tests.conftest import Api

CARD_FIELDS = [
    "cardIdx", "cardNm", "cardTtl", "maxStamps", "url", "stampImgUrl", "onsiteYn", "onsitePwd",
    "minIntervalSec", "regYmdt", "autoRenewYn", "maxAddsPerDay", "suspiciousAddsPerDay",
    "activeYn",
]  # fmt: skip


async def test_a_card_is_created_and_read_back_field_for_field(api: Api) -> None:
    card_idx = await api.card(
        cardNm="Latte", cardTtl="9 lattes, one free", maxStamps=9, url="https://shop.example.com",
        stampImgUrl="https://cdn.example.com/mark.webp", onsiteYn="Y", onsitePwd="9999",
        minIntervalSec=30,
    )  # fmt: skip
    card = await api.ok("GET", "card/get", params={"cardIdx": card_idx})
    assert list(card) == CARD_FIELDS
    assert card["cardIdx"] == card_idx
    assert (card["cardNm"], card["cardTtl"], card["maxStamps"]) == (
        "Latte",
        "9 lattes, one free",
        9,
    )
    assert (card["onsiteYn"], card["onsitePwd"], card["minIntervalSec"]) == ("Y", "9999", 30)
    assert card["stampImgUrl"] == "https://cdn.example.com/mark.webp"


async def test_card_defaults(api: Api) -> None:
    card = await api.ok("GET", "card/get", params={"cardIdx": await api.card()})
    assert (card["onsiteYn"], card["onsitePwd"], card["minIntervalSec"]) == ("N", None, 0)


async def test_card_create_checks_its_parameters(api: Api) -> None:
    for body, name in [
        ({"maxStamps": 10}, "cardNm"),
        ({"cardNm": "x"}, "maxStamps"),
        ({"cardNm": "x", "maxStamps": 0}, "maxStamps"),
        ({"cardNm": "x", "maxStamps": 101}, "maxStamps"),
        ({"cardNm": "x", "maxStamps": "10"}, "maxStamps"),
        ({"cardNm": "x", "maxStamps": 10, "onsiteYn": "Y"}, "onsitePwd"),
        ({"cardNm": "x", "maxStamps": 10, "minIntervalSec": -1}, "minIntervalSec"),
        ({"cardNm": "x", "maxStamps": 10, "url": "javascript:alert(1)"}, "url"),
    ]:
        response = await api.call("POST", "card/create", json=body)
        assert (response.status_code, response.json()["code"]) == (400, 1001), body
        assert name in response.json()["message"], body


async def test_card_update_changes_only_the_fields_sent(api: Api) -> None:
    card_idx = await api.card(cardNm="Before", maxStamps=10)
    before = await api.ok("GET", "card/get", params={"cardIdx": card_idx})
    await api.ok("PUT", "card/update", json={"cardIdx": card_idx, "cardTtl": "New title"})
    after = await api.ok("GET", "card/get", params={"cardIdx": card_idx})
    assert after == {**before, "cardTtl": "New title"}


async def test_a_card_change_shows_on_its_stamps(api: Api) -> None:
    card_idx = await api.card(maxStamps=3)
    stamp_idx = await api.stamp(card_idx)
    for _ in range(3):
        await api.add(stamp_idx)
    assert await api.add(stamp_idx) == 2006
    await api.ok("PUT", "card/update", json={"cardIdx": card_idx, "maxStamps": 4})
    assert await api.add(stamp_idx) == 0
    assert (await api.validate(stamp_idx)).json()["result"]["maxStamps"] == 4


async def test_max_stamps_cannot_drop_below_an_issued_count(api: Api) -> None:
    card_idx = await api.card(maxStamps=5)
    stamp_idx = await api.stamp(card_idx)
    for _ in range(4):
        await api.add(stamp_idx)
    assert await api.code("PUT", "card/update", json={"cardIdx": card_idx, "maxStamps": 3}) == 2103
    await api.ok("PUT", "card/update", json={"cardIdx": card_idx, "maxStamps": 4})


async def test_turning_onsite_on_needs_a_password(api: Api) -> None:
    card_idx = await api.card()
    response = await api.call("PUT", "card/update", json={"cardIdx": card_idx, "onsiteYn": "Y"})
    assert (response.status_code, response.json()["code"]) == (400, 1001)
    await api.ok(
        "PUT", "card/update", json={"cardIdx": card_idx, "onsiteYn": "Y", "onsitePwd": "1"}
    )


async def test_cards_are_listed_newest_first_in_pages(api: Api) -> None:
    made = [await api.card(cardNm=f"card {n}") for n in range(3)]
    first = await api.ok("GET", "card/list", params={"limit": 2})
    second = await api.ok("GET", "card/list", params={"limit": 2, "cursor": first["nextCursor"]})
    assert [c["cardIdx"] for c in first["items"] + second["items"]] == made[::-1]
    assert second["nextCursor"] is None


async def test_a_card_with_stamps_cannot_be_deleted(api: Api) -> None:
    card_idx = await api.card()
    stamp_idx = await api.stamp(card_idx)
    assert await api.code("DELETE", "card/delete", params={"cardIdx": card_idx}) == 2102
    await api.ok("DELETE", "delete", params={"stampIdx": stamp_idx})
    await api.ok("DELETE", "card/delete", params={"cardIdx": card_idx})
    assert await api.code("GET", "card/get", params={"cardIdx": card_idx}) == 2101
    assert await api.code("DELETE", "card/delete", params={"cardIdx": card_idx}) == 2101


async def test_another_accounts_cards_are_not_found(api: Api, other_api: Api) -> None:
    theirs = await other_api.card()
    assert await api.code("GET", "card/get", params={"cardIdx": theirs}) == 2101
    assert await api.code("PUT", "card/update", json={"cardIdx": theirs, "cardNm": "x"}) == 2101
    assert await api.code("DELETE", "card/delete", params={"cardIdx": theirs}) == 2101
    assert (await api.ok("GET", "card/list"))["items"] == []
    assert (await other_api.ok("GET", "card/get", params={"cardIdx": theirs}))["cardNm"] == "Coffee"
