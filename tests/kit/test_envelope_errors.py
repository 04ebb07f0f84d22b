"""Every input gets the envelope: malformed input is 400 naming the field, a bad
key 401, an unknown path 404, a wrong verb 405; never a 500 or an HTML page."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Api

BAD_IDS: list[Any] = ["1", 1.5, -1, 0, 2**64, 2**63, None, [1], {"a": 1}, True, ""]


def assert_envelope(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["code", "message", "result"]
    assert body["code"] == code and body["result"] is None and body["message"]
    return body


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
async def test_a_mistyped_stamp_idx_is_400_naming_it(api: Api, bad: Any) -> None:
    stamp_idx = await api.stamp()
    response = await api.call("PUT", "add", json={"stampIdx": bad})
    body = assert_envelope(response, 400, 1001)
    assert "stampIdx" in body["message"]
    assert await api.count(stamp_idx) == 0


@pytest.mark.parametrize("bad", ["abc", "1.5", "-1", "0", str(2**64), ""])
async def test_a_mistyped_query_idx_is_400_naming_it(api: Api, bad: str) -> None:
    response = await api.call("GET", "validate", params={"stampIdx": bad})
    assert "stampIdx" in assert_envelope(response, 400, 1001)["message"]


async def test_a_missing_query_idx_is_400_naming_it(api: Api) -> None:
    response = await api.call("DELETE", "delete")
    assert "stampIdx" in assert_envelope(response, 400, 1001)["message"]


@pytest.mark.parametrize(
    "raw", [b"{", b"[1, 2]", b'"text"', b"42", b"null", b"", b"\xff\xfe", b"stampIdx=1"]
)
async def test_a_body_that_is_not_a_json_object_is_1002(api: Api, raw: bytes) -> None:
    response = await api.http.put(
        "/api/stamp/v1/add",
        content=raw,
        headers={**api.headers, "Content-Type": "application/json"},
    )
    assert_envelope(response, 400, 1002)


async def test_a_json_body_is_read_whatever_its_content_type(api: Api) -> None:
    stamp_idx = await api.stamp()
    response = await api.http.put(
        "/api/stamp/v1/add",
        content=f'{{"stampIdx": {stamp_idx}}}',
        headers={**api.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.json()["code"] == 0


@pytest.mark.parametrize(
    "authorization",
    [None, "", "APIKey", "APIKey ", "Bearer sk_x", "APIKey sk_unknown", "APIKey " + "x" * 500],
)
async def test_a_missing_malformed_or_unknown_key_is_401(
    client: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.get("/api/stamp/v1/validate?stampIdx=1", headers=headers)
    assert_envelope(response, 401, 1101)


async def test_authorization_is_checked_before_the_body(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/stamp/v1/add", content=b"{")
    assert_envelope(response, 401, 1101)


async def test_a_revoked_key_is_refused(api: Api, database_url: str) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import select

    from stampbook.accounts import service as accounts
    from stampbook.db.schema import api_key
    from stampbook.kit.clock import utc_naive
    from stampbook.kit.db import Database

    assert (await api.call("GET", "list")).status_code == 200
    database = Database(database_url, pool_size=1)
    try:
        async with database.write() as conn:
            key_idx = (
                await conn.execute(
                    select(api_key.c.key_idx).where(
                        api_key.c.key_hash == accounts.hash_key(api.key)
                    )
                )
            ).scalar_one()
            assert await accounts.revoke_key(
                conn, key_idx=key_idx, now=utc_naive(datetime.now(UTC))
            )
    finally:
        await database.dispose()
    assert_envelope(await api.call("GET", "list"), 401, 1101)


async def test_an_unknown_path_is_404_and_a_wrong_verb_405(api: Api) -> None:
    assert_envelope(await api.call("GET", "nothing-here"), 404, 1003)
    assert_envelope(await api.http.get("/not/an/api"), 404, 1003)
    response = await api.call("GET", "add")
    assert_envelope(response, 405, 1004)
    assert "PUT" in response.headers.get("allow", "")


async def test_an_unexpected_failure_is_the_500_envelope_not_a_trace(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stampbook.stamps import rules

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    stamp_idx = await api.stamp()
    monkeypatch.setattr(rules, "usability_refusal", broken)
    response = await api.call("GET", "validate", params={"stampIdx": stamp_idx})
    body = assert_envelope(response, 500, 1901)
    assert "boom" not in response.text and "Traceback" not in response.text
    assert body["message"]


async def test_health_and_readiness_and_openapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    spec = (await client.get("/openapi.json")).json()
    verbs = ["create", "add", "remove", "update", "delete", "validate", "redeem", "list", "history"]
    verbs += ["card/create", "card/update", "card/get", "card/list", "card/delete"]
    for path in verbs:
        assert f"/api/stamp/v1/{path}" in spec["paths"], path
    assert (await client.get("/docs")).status_code == 200
