"""Parameters outside their bounds, or text no database can store, are 1001 naming
the parameter (HTTP 400), on both databases alike; never a 500 from the driver."""

from __future__ import annotations

import pytest

from tests.conftest import Api


@pytest.mark.parametrize("value", ["0", "-1", str(2**63), "55023419653542981402624", "1e3"])
async def test_an_id_in_the_query_must_be_1_to_2_63_minus_1(api: Api, value: str) -> None:
    for path in ("validate", "history"):
        response = await api.call("GET", path, params={"stampIdx": value})
        assert (response.status_code, response.json()["code"]) == (400, 1001)
        assert "stampIdx" in response.json()["message"]
    response = await api.call("DELETE", "delete", params={"stampIdx": value})
    assert (response.status_code, response.json()["code"]) == (400, 1001)
    response = await api.call("GET", "card/get", params={"cardIdx": value})
    assert (response.status_code, response.json()["code"]) == (400, 1001)


@pytest.mark.parametrize("value", ["0", "-5", "101"])
async def test_a_page_size_must_be_1_to_100(api: Api, value: str) -> None:
    for path in ("list", "card/list"):
        response = await api.call("GET", path, params={"limit": value})
        assert (response.status_code, response.json()["code"]) == (400, 1001), path
        assert "limit" in response.json()["message"]


async def test_a_nul_in_a_body_field_is_refused_naming_it(api: Api) -> None:
    response = await api.call("POST", "card/create", json={"cardNm": "a\x00b", "maxStamps": 3})

    assert (response.status_code, response.json()["code"]) == (400, 1001)
    assert "cardNm" in response.json()["message"]


async def test_a_lone_surrogate_in_a_body_field_is_refused(api: Api) -> None:
    stamp_idx = await api.stamp()
    raw = b'{"stampIdx": %d, "memo": "\\ud800"}' % stamp_idx

    response = await api.http.put(
        "/api/stamp/v1/update", content=raw, headers={**api.headers, "Idempotency-Key": "s1"}
    )

    assert (response.status_code, response.json()["code"]) == (400, 1001)
    assert "memo" in response.json()["message"]


async def test_a_nul_in_the_query_is_refused_naming_it(api: Api) -> None:
    response = await api.call("GET", "list", params={"userId": "a\x00b"})

    assert (response.status_code, response.json()["code"]) == (400, 1001)
    assert "userId" in response.json()["message"]


async def test_a_control_character_in_the_idempotency_key_is_1303(api: Api) -> None:
    stamp_idx = await api.stamp()

    response = await api.call(
        "PUT", "add", json={"stampIdx": stamp_idx}, headers={"Idempotency-Key": "a\x00b"}
    )

    assert (response.status_code, response.json()["code"]) == (400, 1303)
    assert await api.count(stamp_idx) == 0
