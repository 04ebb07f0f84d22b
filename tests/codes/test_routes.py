"""The receipt-code API over HTTP: a code is 128 random bits stored only as a
hash, claims once through the add's own rules, ledger and outbox, and every
code that cannot be claimed is answered with its own code."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from tests.codes.conftest import claim, new_code, stored_codes
from tests.conftest import Api, ledger

CREATED_FIELDS = ["codeIdx", "code", "url", "expiresYmdt"]
LISTED_FIELDS = [
    "codeIdx", "cardIdx", "cardNm", "stamps", "memo", "state", "expiresYmdt", "usedYmdt",
    "usedStampIdx", "regYmdt",
]  # fmt: skip


async def test_a_code_is_random_shown_once_and_stored_only_as_its_hash(
    api: Api, database_url: str
) -> None:
    card_idx = await api.card()
    created = await new_code(api, card_idx, memo="till 1")
    assert list(created) == CREATED_FIELDS
    code = created["code"]
    # token_urlsafe(16): 22 URL-safe characters carry 128 random bits.
    assert len(code) >= 22 and code.replace("-", "").replace("_", "").isalnum()
    assert created["url"] == f"https://stamps.example.test/c/{code}"
    expected_expiry = (api.clock.now() + timedelta(seconds=600)).strftime("%Y-%m-%d %H:%M:%S")
    assert created["expiresYmdt"] == expected_expiry

    [row] = await stored_codes(database_url, api.account_idx)
    assert row.code_hash == hashlib.sha256(code.encode()).hexdigest()
    assert code not in [str(value) for value in row]
    assert (row.stamps, row.memo) == (1, "till 1")

    listed = await api.ok("GET", "code/list")
    assert [list(item) for item in listed["items"]] == [LISTED_FIELDS]
    assert listed["items"][0]["state"] == "live"
    assert code not in str(listed)
    assert (
        await api.ok("GET", "code/get", params={"codeIdx": created["codeIdx"]})
        == (listed["items"][0])
    )


async def test_two_codes_differ(api: Api) -> None:
    card_idx = await api.card()
    codes = {(await new_code(api, card_idx))["code"] for _ in range(5)}
    assert len(codes) == 5


async def test_a_claim_adds_the_codes_stamps_once_with_source_code_on_the_ledger(
    api: Api, database_url: str
) -> None:
    card_idx = await api.card()
    stamp_idx = await api.stamp(card_idx)
    created = await new_code(api, card_idx, stamps=3)

    assert await claim(api, created["code"], stamp_idx) == 0
    assert await api.count(stamp_idx) == 3
    latest = (await api.history(stamp_idx))[0]
    assert (latest["action"], latest["stampsBefore"], latest["stampsAfter"]) == ("ADD", 0, 3)
    assert (latest["source"], latest["codeIdx"]) == ("CODE", created["codeIdx"])
    assert (await ledger(database_url, stamp_idx))[-1].code_idx == created["codeIdx"]

    # Claimed once: again, on this stamp or another, it is 2402 and changes nothing.
    other = await api.stamp(card_idx)
    assert await claim(api, created["code"], stamp_idx) == 2402
    assert await claim(api, created["code"], other) == 2402
    assert (await api.count(stamp_idx), await api.count(other)) == (3, 0)
    item = (await api.ok("GET", "code/list"))["items"][0]
    assert (item["state"], item["usedStampIdx"]) == ("used", stamp_idx)
    assert item["usedYmdt"] is not None


async def test_unknown_expired_revoked_and_foreign_codes_are_refused_each_with_its_code(
    api: Api, other_api: Api
) -> None:
    card_idx = await api.card()
    stamp_idx = await api.stamp(card_idx)

    assert await claim(api, "no-such-code-at-all-xx", stamp_idx) == 2401

    expiring = await new_code(api, card_idx, ttlSec=30)
    api.clock.advance(seconds=30)
    assert await claim(api, expiring["code"], stamp_idx) == 2403

    revoked = await new_code(api, card_idx)
    assert await api.code("DELETE", "code/delete", params={"codeIdx": revoked["codeIdx"]}) == 0
    assert await claim(api, revoked["code"], stamp_idx) == 2404
    states = {
        item["codeIdx"]: item["state"] for item in (await api.ok("GET", "code/list"))["items"]
    }
    assert states == {expiring["codeIdx"]: "expired", revoked["codeIdx"]: "revoked"}

    # Another account's code is unknown here, and a code of another card is 2405.
    foreign = await new_code(other_api, await other_api.card())
    assert await claim(api, foreign["code"], stamp_idx) == 2401
    wrong = await new_code(api, await api.card(cardNm="Tea"))
    assert await claim(api, wrong["code"], stamp_idx) == 2405
    # A stamp that is not the account's is 2001 before any code is looked at.
    assert await claim(api, wrong["code"], 10**12) == 2001
    assert await api.count(stamp_idx) == 0


async def test_a_claim_the_add_refuses_changes_nothing_and_leaves_the_code_unclaimed(
    api: Api, database_url: str
) -> None:
    card_idx = await api.card(maxStamps=2)
    stamp_idx = await api.stamp(card_idx)
    created = await new_code(api, card_idx, stamps=3)

    assert await claim(api, created["code"], stamp_idx) == 2006  # 0 + 3 > 2
    assert await api.count(stamp_idx) == 0
    assert [event["action"] for event in await api.history(stamp_idx)] == ["CREATE"]
    [row] = await stored_codes(database_url, api.account_idx)
    assert (row.used_at, row.used_stamp_idx) == (None, None)

    # The card's rules refuse by the add's order: a redeemed stamp is 2005.
    small = await new_code(api, card_idx, stamps=2)
    assert await claim(api, small["code"], stamp_idx) == 0
    await api.ok("PUT", "redeem", json={"stampIdx": stamp_idx})
    one = await new_code(api, card_idx)
    assert await claim(api, one["code"], stamp_idx) == 2005
    assert (await api.ok("GET", "code/get", params={"codeIdx": one["codeIdx"]}))["state"] == "live"


async def test_an_idempotent_claim_replays_and_claims_once(api: Api) -> None:
    card_idx = await api.card()
    stamp_idx = await api.stamp(card_idx)
    created = await new_code(api, card_idx)
    key = {"Idempotency-Key": f"claim-{created['codeIdx']}"}

    first = await api.call(
        "PUT", "code/claim", json={"code": created["code"], "stampIdx": stamp_idx}, headers=key
    )
    again = await api.call(
        "PUT", "code/claim", json={"code": created["code"], "stampIdx": stamp_idx}, headers=key
    )
    assert first.json()["code"] == again.json()["code"] == 0
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert await api.count(stamp_idx) == 1
    other = await api.call(
        "PUT", "code/claim", json={"code": "another-code-xxxxxxxx", "stampIdx": stamp_idx},
        headers=key,
    )  # fmt: skip
    assert other.status_code == 422 and other.json()["code"] == 1301


async def test_revoking_answers_for_unknown_used_and_already_revoked_codes(api: Api) -> None:
    card_idx = await api.card()
    stamp_idx = await api.stamp(card_idx)
    used = await new_code(api, card_idx)
    assert await claim(api, used["code"], stamp_idx) == 0

    def delete(code_idx: int) -> object:
        return api.code("DELETE", "code/delete", params={"codeIdx": code_idx})

    assert await delete(used["codeIdx"]) == 2402
    live = await new_code(api, card_idx)
    assert await delete(live["codeIdx"]) == 0
    assert await delete(live["codeIdx"]) == 2404
    assert await delete(10**12) == 2406
    assert await api.code("GET", "code/get", params={"codeIdx": 10**12}) == 2406


async def test_create_refuses_an_unknown_card_and_malformed_input_names_the_field(
    api: Api, other_api: Api
) -> None:
    assert await api.code("POST", "code/create", json={"cardIdx": 10**12}) == 2101
    foreign_card = await other_api.card()
    assert await api.code("POST", "code/create", json={"cardIdx": foreign_card}) == 2101
    card_idx = await api.card()
    for field, value in (("stamps", 0), ("stamps", 11), ("ttlSec", 29), ("ttlSec", 604_801),
                         ("stamps", "1"), ("memo", 5)):  # fmt: skip
        response = await api.call("POST", "code/create", json={"cardIdx": card_idx, field: value})
        assert response.status_code == 400, (field, value)
        body = response.json()
        assert body["code"] == 1001 and field in body["message"], body
    for body in ({"stampIdx": 1}, {"code": "", "stampIdx": 1}, {"code": "x" * 101, "stampIdx": 1},
                 {"code": "abc", "stampIdx": "1"}):  # fmt: skip
        response = await api.call("PUT", "code/claim", json=body)
        assert response.status_code == 400 and response.json()["code"] == 1001, body
    # The limits themselves are accepted.
    for fields in ({"stamps": 10, "ttlSec": 604_800}, {"stamps": 1, "ttlSec": 30}):
        await new_code(api, card_idx, **fields)


async def test_the_list_pages_newest_first_and_filters_by_card(api: Api) -> None:
    coffee, tea = await api.card(), await api.card(cardNm="Tea")
    made = [(await new_code(api, card))["codeIdx"] for card in (coffee, tea, coffee)]
    first = await api.ok("GET", "code/list", params={"limit": 2})
    assert [item["codeIdx"] for item in first["items"]] == [made[2], made[1]]
    second = await api.ok("GET", "code/list", params={"limit": 2, "cursor": first["nextCursor"]})
    assert [item["codeIdx"] for item in second["items"]] == [made[0]]
    assert second["nextCursor"] is None
    only_tea = await api.ok("GET", "code/list", params={"cardIdx": tea})
    assert [item["cardNm"] for item in only_tea["items"]] == ["Tea"]
