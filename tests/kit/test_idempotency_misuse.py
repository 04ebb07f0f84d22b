"""Idempotency-Key misuse: the same key on another body or verb is 1301, an
empty or overlong key is 1303, and a request refused as malformed or invalid
leaves no key behind, so that it can be fixed and sent again; keys are
scoped per account, reads ignore them, and concurrent twins write once."""

from __future__ import annotations

import asyncio

import pytest

from stampbook.kit.errors import Code
from tests.conftest import Api
from tests.kit.conftest import KEY, envelope, put_add, stored_keys

# -- misuse -----------------------------------------------------------------------------


async def test_the_same_key_with_another_body_is_refused_with_1301(api: Api) -> None:
    one, two = await api.stamp(), await api.stamp()
    assert (await put_add(api, one)).json()["code"] == 0

    response = await put_add(api, two)

    assert envelope(response) == (422, Code.IDEMPOTENCY_KEY_REUSED)
    assert "Idempotent-Replayed" not in response.headers
    assert response.json()["result"] is None
    assert await api.count(two) == 0


async def test_the_same_key_on_another_verb_is_refused_with_1301(api: Api) -> None:
    stamp_idx = await api.stamp()
    assert (await put_add(api, stamp_idx)).json()["code"] == 0

    response = await api.call("PUT", "remove", json={"stampIdx": stamp_idx}, headers=KEY)

    assert envelope(response) == (422, Code.IDEMPOTENCY_KEY_REUSED)
    assert await api.count(stamp_idx) == 1


@pytest.mark.parametrize("key", ["", " ", "k" * 256])
async def test_an_empty_or_overlong_key_is_refused_with_1303(api: Api, key: str) -> None:
    stamp_idx = await api.stamp()

    response = await put_add(api, stamp_idx, key)

    assert envelope(response) == (400, Code.IDEMPOTENCY_KEY_INVALID)
    assert await api.count(stamp_idx) == 0


async def test_a_key_of_255_characters_is_accepted(api: Api) -> None:
    stamp_idx = await api.stamp()
    key = "k" * 255

    first, retry = await put_add(api, stamp_idx, key), await put_add(api, stamp_idx, key)

    assert envelope(first) == (200, 0)
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert await api.count(stamp_idx) == 1


async def test_a_malformed_request_leaves_no_key_so_it_can_be_fixed(
    api: Api, database_url: str
) -> None:
    stamp_idx = await api.stamp()

    malformed = await api.call("PUT", "add", json={"stampIdx": str(stamp_idx)}, headers=KEY)
    assert envelope(malformed) == (400, Code.INVALID_PARAMETER)
    assert await stored_keys(database_url, api.account_idx) == []

    fixed = await put_add(api, stamp_idx)
    assert envelope(fixed) == (200, 0)
    assert "Idempotent-Replayed" not in fixed.headers
    assert await api.count(stamp_idx) == 1


async def test_a_request_refused_as_invalid_by_the_service_leaves_no_key(
    api: Api, database_url: str
) -> None:
    # onsiteYn=Y without onsitePwd passes the schema; the service refuses it (1001, HTTP 400).
    invalid = await api.call(
        "POST",
        "card/create",
        json={"cardNm": "On site", "maxStamps": 5, "onsiteYn": "Y"},
        headers=KEY,
    )
    assert envelope(invalid) == (400, Code.INVALID_PARAMETER)
    assert await stored_keys(database_url, api.account_idx) == []

    fixed = await api.call(
        "POST",
        "card/create",
        json={"cardNm": "On site", "maxStamps": 5, "onsiteYn": "Y", "onsitePwd": "1234"},
        headers=KEY,
    )
    assert envelope(fixed) == (200, 0)


async def test_keys_are_scoped_per_account(api: Api, other_api: Api) -> None:
    mine, theirs = await api.stamp(), await other_api.stamp()

    assert (await put_add(api, mine)).json()["code"] == 0
    response = await put_add(other_api, theirs)

    assert envelope(response) == (200, 0)
    assert "Idempotent-Replayed" not in response.headers
    assert await api.count(mine) == await other_api.count(theirs) == 1


async def test_reads_ignore_the_key(api: Api, database_url: str) -> None:
    stamp_idx = await api.stamp()

    response = await api.call("GET", "validate", params={"stampIdx": stamp_idx}, headers=KEY)

    assert envelope(response) == (200, 0)
    assert await stored_keys(database_url, api.account_idx) == []


async def test_concurrent_twins_in_one_process_write_once(api: Api) -> None:
    stamp_idx = await api.stamp()

    responses = await asyncio.gather(*(put_add(api, stamp_idx) for _ in range(10)))

    assert {(r.status_code, r.content) for r in responses} == {(200, responses[0].content)}
    assert await api.count(stamp_idx) == 1
