"""A deactivated card (``activeYn = N``) issues no new stamp, whoever asks
(the API, a renewal, a receipt code's "Get a card", a stamp moved onto it),
with 2105; the stamps
already issued on it keep working; reactivating it issues again."""

from __future__ import annotations

from fastapi import FastAPI

from tests.codes.conftest import claim, new_code
from tests.codes.test_page import code_path
from tests.conftest import Api
from tests.page.conftest import CSRF_FIELD, browser_client


async def _deactivate(api: Api, card_idx: int, active: str = "N") -> None:
    await api.ok("PUT", "card/update", json={"cardIdx": card_idx, "activeYn": active})


def _stamp_body(api: Api, card_idx: int) -> dict[str, object]:
    return {"cardIdx": card_idx, "strtYmd": api.today.isoformat(), "endYmd": api.today.isoformat()}


async def test_a_card_is_active_until_deactivated_and_can_be_created_inactive(api: Api) -> None:
    card_idx = await api.card()
    assert (await api.ok("GET", "card/get", params={"cardIdx": card_idx}))["activeYn"] == "Y"
    await _deactivate(api, card_idx)
    listed = (await api.ok("GET", "card/list"))["items"]
    assert [(c["cardIdx"], c["activeYn"]) for c in listed] == [(card_idx, "N")]
    dormant = await api.card(activeYn="N")
    assert (await api.ok("GET", "card/get", params={"cardIdx": dormant}))["activeYn"] == "N"
    for value in ("y", "", None, 1):
        response = await api.call(
            "PUT", "card/update", json={"cardIdx": card_idx, "activeYn": value}
        )
        assert response.status_code == 400 and "activeYn" in response.json()["message"], value


async def test_a_deactivated_card_issues_no_stamp_but_its_stamps_keep_working(api: Api) -> None:
    card_idx = await api.card(maxStamps=2)
    held = await api.stamp(card_idx)
    await _deactivate(api, card_idx)

    refused = await api.call("POST", "create", json=_stamp_body(api, card_idx))
    assert (refused.status_code, refused.json()["code"]) == (200, 2105)
    korean = await api.call(
        "POST", "create", json=_stamp_body(api, card_idx), headers={"Accept-Language": "ko"}
    )
    assert korean.json()["message"] == "비활성화된 카드입니다. 새 스탬프를 발급하지 않습니다."
    assert [s["stampIdx"] for s in (await api.ok("GET", "list"))["items"]] == [held]

    await api.ok("PUT", "add", json={"stampIdx": held})
    await api.ok("PUT", "remove", json={"stampIdx": held})
    await api.ok("PUT", "add", json={"stampIdx": held})
    await api.ok("PUT", "add", json={"stampIdx": held})
    assert (await api.ok("GET", "validate", params={"stampIdx": held}))["stamps"] == 2
    await api.ok("PUT", "redeem", json={"stampIdx": held})

    await _deactivate(api, card_idx, "Y")
    assert await api.ok("POST", "create", json=_stamp_body(api, card_idx))


async def test_no_stamp_moves_onto_a_deactivated_card_and_a_refused_move_changes_nothing(
    api: Api,
) -> None:
    source, target = await api.card(), await api.card()
    held = await api.stamp(source)
    await _deactivate(api, target)
    before = await api.ok("GET", "validate", params={"stampIdx": held})
    refused = await api.call(
        "PUT", "update", json={"stampIdx": held, "cardIdx": target, "memo": "x"}
    )
    assert (refused.status_code, refused.json()["code"]) == (200, 2105)
    assert await api.ok("GET", "validate", params={"stampIdx": held}) == before
    # Staying on a deactivated card is no move: its stamps keep being updated.
    await _deactivate(api, source)
    await api.ok("PUT", "update", json={"stampIdx": held, "cardIdx": source, "memo": "kept"})
    assert (await api.ok("GET", "validate", params={"stampIdx": held}))["memo"] == "kept"


async def test_a_renewing_card_deactivated_redeems_without_a_next_stamp(api: Api) -> None:
    card_idx = await api.card(maxStamps=1, autoRenewYn="Y")
    held = await api.stamp(card_idx)
    await api.ok("PUT", "add", json={"stampIdx": held})
    await _deactivate(api, card_idx)
    await api.ok("PUT", "redeem", json={"stampIdx": held})
    assert [s["stampIdx"] for s in (await api.ok("GET", "list"))["items"]] == [held]


async def test_a_code_gets_no_card_of_a_deactivated_card_but_still_adds_to_one(
    app: FastAPI, api: Api
) -> None:
    card_idx = await api.card(cardNm="Corner Coffee")
    held = await api.stamp(card_idx)
    enrol, onto = await new_code(api, card_idx), await new_code(api, card_idx)
    async with browser_client(app) as phone:
        opened = await phone.get(code_path(enrol))  # before the card is deactivated
        token = CSRF_FIELD.search(opened.text)
        assert token and 'data-action="new"' in opened.text
        await _deactivate(api, card_idx)
        page = await phone.get(code_path(enrol))
        assert "no longer handed out" in page.text and 'data-action="new"' not in page.text
        # The form opened before is refused all the same, and issues nothing.
        refused = await phone.post(code_path(enrol), data={"csrf": token.group(1), "action": "new"})
        assert refused.status_code == 409 and "location" not in refused.headers
        assert "The card is deactivated: it issues no new stamps." in refused.text
    assert [s["stampIdx"] for s in (await api.ok("GET", "list"))["items"]] == [held]
    assert (await api.ok("GET", "code/get", params={"codeIdx": enrol["codeIdx"]}))[
        "state"
    ] == "live"
    assert await claim(api, str(onto["code"]), held) == 0
