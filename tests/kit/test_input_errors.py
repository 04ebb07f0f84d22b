"""Input errors say what went wrong and what was expected, in English and Korean.

An unknown body field is refused (1001 naming it) on every JSON body of every
API route, where it used to be ignored: ``update {"stampz": 3}`` answered 0
and changed nothing. A mistyped parameter's message says what a good one is,
read from the same OpenAPI document that declares the constraint.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from stampbook.kit.errors import EXPECTATIONS, message_for
from tests.conftest import Api
from tests.kit.test_envelope_errors import assert_envelope


def body_operations(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every API operation that takes a JSON body."""
    return [
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
        if path.startswith("/api/") and "requestBody" in operation
    ]


async def test_every_json_body_refuses_an_unknown_field_naming_it(api: Api, app: FastAPI) -> None:
    operations = body_operations(app)
    # The stamp verbs, the card extension and the webhook endpoints all take bodies.
    assert len(operations) >= 10, operations
    for method, path in operations:
        for lang, expected in (("en", "Unknown parameter: stampz."), ("ko", "stampz")):
            response = await api.http.request(
                method,
                path,
                json={"stampz": 3},
                headers={**api.headers, "Accept-Language": lang},
            )
            body = assert_envelope(response, 400, 1001)
            assert expected in body["message"], (method, path, body)
        assert "알 수 없는 파라미터" in body["message"]


async def test_update_with_a_misspelt_field_changes_nothing(api: Api) -> None:
    stamp_idx = await api.stamp()
    assert await api.add(stamp_idx) == 0
    response = await api.call("PUT", "update", json={"stampIdx": stamp_idx, "stampz": 3})
    body = assert_envelope(response, 400, 1001)
    assert body["message"].lower().startswith("unknown parameter: stampz")
    assert await api.count(stamp_idx) == 1
    assert [event["action"] for event in await api.history(stamp_idx)] == ["ADD", "CREATE"]


async def test_an_unknown_field_beside_valid_ones_is_refused_on_the_add(api: Api) -> None:
    stamp_idx = await api.stamp()
    response = await api.call("PUT", "add", json={"stampIdx": stamp_idx, "count": 2})
    assert "count" in assert_envelope(response, 400, 1001)["message"]
    assert await api.count(stamp_idx) == 0


@pytest.mark.parametrize("bad", ["1", 0, -3, 1.5, None, 2**63])
async def test_a_bad_stamp_idx_says_a_positive_integer_is_expected(api: Api, bad: Any) -> None:
    en = await api.call("PUT", "add", json={"stampIdx": bad})
    assert assert_envelope(en, 400, 1001)["message"] == (
        "Invalid parameter: stampIdx must be a positive integer."
    )
    ko = await api.call("PUT", "add", json={"stampIdx": bad}, headers={"Accept-Language": "ko"})
    assert assert_envelope(ko, 400, 1001)["message"] == (
        "잘못된 파라미터입니다: stampIdx 값은 양의 정수여야 합니다."
    )


async def test_a_bad_query_id_says_what_is_expected(api: Api) -> None:
    response = await api.call("GET", "validate", params={"stampIdx": "abc"})
    assert "stampIdx must be a positive integer" in assert_envelope(response, 400, 1001)["message"]
    response = await api.call("DELETE", "delete")
    assert "stampIdx must be a positive integer" in assert_envelope(response, 400, 1001)["message"]
    response = await api.call("GET", "list", params={"cardIdx": "0"})
    assert "cardIdx must be a positive integer" in assert_envelope(response, 400, 1001)["message"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("stamps", -1, "stamps must be an integer from 0 to 100000"),
        ("useYn", "yes", "useYn must be one of Y, N"),
        ("strtYmd", "2026/01/01", "strtYmd must be a date as YYYY-MM-DD"),
        ("userNm", "x" * 201, "userNm must be text of 0 to 200 characters"),
        ("userId", "", "userId must be text of 1 to 100 characters"),
        ("domain", "ftp://example", "domain must be an http:// or https:// URL of at most 2000"),
        ("cardIdx", None, "cardIdx must be a positive integer"),
        ("memo", "a\x00b", "memo must not contain NUL characters"),
    ],
)
async def test_each_kind_of_field_says_what_it_expects(
    api: Api, field: str, value: Any, message: str
) -> None:
    stamp_idx = await api.stamp()
    response = await api.call("PUT", "update", json={"stampIdx": stamp_idx, field: value})
    assert message in assert_envelope(response, 400, 1001)["message"]


async def test_a_bad_webhook_event_list_names_the_choices(api: Api) -> None:
    response = await api.call(
        "POST", "webhook/create", json={"url": "http://127.0.0.1:9/x", "events": ["nope"]}
    )
    message = assert_envelope(response, 400, 1001)["message"]
    assert "events must be a list of 1 to 8 of stamp.created" in message
    assert message.endswith("stamp.deleted, stamp.suspicious.")


def test_every_expectation_has_both_languages_and_names_the_parameter() -> None:
    values = {
        "minimum": 0,
        "maximum": 9,
        "choices": "Y, N",
        "min_length": 1,
        "max_length": 9,
        "min_items": 1,
        "max_items": 2,
    }
    from stampbook.kit.errors import Code

    for kind in EXPECTATIONS:
        for lang in ("en", "ko"):
            text = message_for(
                Code.INVALID_PARAMETER, lang, param="someField", expected=(kind, values)
            )
            assert "someField" in text and "{" not in text, (kind, lang, text)


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("PUT", "/api/stamp/v1/add/", 404, 1003),
        ("GET", "/api/stamp/v1/validate/", 404, 1003),
        ("POST", "/api/stamp/v1/add", 405, 1004),
        ("PATCH", "/api/stamp/v1/update", 405, 1004),
        ("GET", "/api/stamp/v1/card/create", 405, 1004),
    ],
)
async def test_a_trailing_slash_or_a_wrong_verb_gets_the_envelope(
    api: Api, method: str, path: str, status: int, code: int
) -> None:
    response = await api.http.request(method, path, headers=api.headers, json={"stampIdx": 1})
    assert_envelope(response, status, code)


async def test_the_document_declares_what_the_server_enforces(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    for name in ("StampRef", "UpdateStamp", "CreateStamp", "CreateCard", "UpdateWebhook"):
        assert schemas[name]["additionalProperties"] is False, name
    idx = schemas["StampRef"]["properties"]["stampIdx"]
    assert idx == {**idx, "type": "integer", "minimum": 1, "maximum": 2**63 - 1}
    update = schemas["UpdateStamp"]["properties"]
    # Optional but never null: the field shows no null branch.
    assert update["useYn"]["enum"] == ["Y", "N"] and "anyOf" not in update["useYn"]
    assert update["strtYmd"]["format"] == "date"
    assert update["stamps"]["minimum"] == 0 and update["stamps"]["maximum"] == 100_000
    assert update["userId"]["minLength"] == 1 and update["userId"]["maxLength"] == 100
    query = {
        parameter["name"]: parameter["schema"]
        for parameter in document["paths"]["/api/stamp/v1/list"]["get"]["parameters"]
    }
    assert query["cardIdx"]["anyOf"][0]["minimum"] == 1
    assert query["limit"]["maximum"] == 100
    assert '"ge"' not in str(document).replace("'", '"')


async def test_a_malformed_idempotency_key_is_refused_before_the_route_acts(api: Api) -> None:
    # The webhook URL is vetted before the write starts: the key must be judged first.
    response = await api.call(
        "POST",
        "webhook/create",
        json={"url": "http://10.0.0.1/hook"},
        headers={"Idempotency-Key": "k" * 256},
    )
    assert_envelope(response, 400, 1303)
