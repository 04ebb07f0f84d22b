"""Parameters outside their bounds, or text no database can store, are 1001 naming
the parameter (HTTP 400), on both databases alike; never a 500 from the driver."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from stampbook.kit.params import strict_decimal
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


# --- integers written as text: one strict rule everywhere ------------------------------

# Every API endpoint with an integer query parameter, and those parameters. A
# test below checks this against the OpenAPI document, so a new one cannot be
# left out.
INTEGER_QUERY_PARAMETERS = {
    ("DELETE", "delete"): ("stampIdx",),
    ("GET", "validate"): ("stampIdx",),
    ("GET", "history"): ("stampIdx", "limit"),
    ("GET", "list"): ("cardIdx", "limit"),
    ("GET", "card/get"): ("cardIdx",),
    ("GET", "card/list"): ("limit",),
    ("DELETE", "card/delete"): ("cardIdx",),
    ("GET", "webhook/list"): ("limit",),
    ("DELETE", "webhook/delete"): ("webhookIdx",),
    ("GET", "webhook/deliveries"): ("webhookIdx", "limit"),
    ("GET", "code/get"): ("codeIdx",),
    ("GET", "code/list"): ("cardIdx", "limit"),
    ("DELETE", "code/delete"): ("codeIdx",),
    ("GET", "stats"): ("cardIdx",),
}
# Endpoints taking an opaque cursor, which holds an integer inside.
CURSOR_ENDPOINTS = (
    "list",
    "history",
    "card/list",
    "webhook/list",
    "webhook/deliveries",
    "code/list",
)
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def loose_spellings(number: int) -> dict[str, str]:
    """Texts that int() or pydantic's lax mode would read as ``number`` (or as some
    number at all), none of which is ``number`` in plain ASCII digits."""
    digits = str(number)
    return {
        "underscore": f"{digits[0]}_{digits[1:]}" if len(digits) > 1 else f"0_{digits}",
        "plus": f"+{digits}",
        "spaces": f" {digits} ",
        "decimal point": f"{digits}.0",
        "arabic-indic digits": digits.translate(ARABIC_INDIC),
        "superscript two": "²",
        "hexadecimal": f"0x{number:x}",
        "minus zero": "-0",
        "leading zero": f"0{digits}",
        "5000 digits": "9" * 5000,
        "2^63": str(2**63),
    }


SPELLINGS = list(loose_spellings(12))


async def _query_targets(api: Api) -> dict[str, int]:
    """Real ids for every integer parameter, so a loose reading would hit a row."""
    card_idx = await api.card()
    stamp_idx = await api.stamp(card_idx)
    created = await api.ok("POST", "webhook/create", json={"url": "http://127.0.0.1:9/hooks"})
    code = await api.ok("POST", "code/create", json={"cardIdx": card_idx})
    return {
        "stampIdx": stamp_idx,
        "cardIdx": card_idx,
        "webhookIdx": int(created["webhookIdx"]),
        "codeIdx": int(code["codeIdx"]),
        "limit": 12,
    }


@pytest.mark.parametrize("spelling", SPELLINGS)
async def test_integers_in_the_query_are_ascii_digits_only(api: Api, spelling: str) -> None:
    targets = await _query_targets(api)
    for (method, path), names in INTEGER_QUERY_PARAMETERS.items():
        for name in names:
            params = {key: str(targets[key]) for key in names}
            params[name] = loose_spellings(targets[name])[spelling]
            response = await api.call(method, path, params=params)
            body = response.json()
            assert (response.status_code, body["code"]) == (400, 1001), (method, path, name, body)
            assert name in body["message"], (path, body)
    # Nothing was deleted by a DELETE that named a real id loosely.
    assert await api.code("GET", "validate", params={"stampIdx": targets["stampIdx"]}) == 0
    assert await api.code("GET", "card/get", params={"cardIdx": targets["cardIdx"]}) == 0
    webhooks = (await api.ok("GET", "webhook/list"))["items"]
    assert [item["webhookIdx"] for item in webhooks] == [targets["webhookIdx"]]
    code = await api.ok("GET", "code/get", params={"codeIdx": targets["codeIdx"]})
    assert code["state"] == "live"


@pytest.mark.parametrize("spelling", SPELLINGS)
async def test_the_number_inside_a_cursor_follows_the_same_rule(api: Api, spelling: str) -> None:
    targets = await _query_targets(api)
    inner = f"i:{loose_spellings(targets['stampIdx'] + 1)[spelling]}".encode()
    cursor = base64.urlsafe_b64encode(inner).decode().rstrip("=")
    for path in CURSOR_ENDPOINTS:
        params = {"cursor": cursor}
        if path == "history":
            params["stampIdx"] = str(targets["stampIdx"])
        if path == "webhook/deliveries":
            params["webhookIdx"] = str(targets["webhookIdx"])
        response = await api.call("GET", path, params=params)
        assert (response.status_code, response.json()["code"]) == (400, 1001), (path, spelling)
        assert "cursor" in response.json()["message"]


async def test_plain_ascii_digits_are_accepted_everywhere(api: Api) -> None:
    targets = await _query_targets(api)
    for (method, path), names in INTEGER_QUERY_PARAMETERS.items():
        if method == "DELETE":
            continue
        params = {key: str(targets[key]) for key in names}
        assert await api.code(method, path, params=params) == 0, path


async def test_the_table_names_every_integer_query_parameter(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    found: dict[tuple[str, str], tuple[str, ...]] = {}
    for route, operations in document["paths"].items():
        for method, operation in operations.items():
            names = tuple(
                parameter["name"]
                for parameter in operation.get("parameters", ())
                if parameter["in"] == "query" and _is_integer(parameter["schema"])
            )
            if names:
                found[(method.upper(), route.removeprefix("/api/stamp/v1/"))] = names
    assert {key: set(names) for key, names in found.items()} == {
        key: set(names) for key, names in INTEGER_QUERY_PARAMETERS.items()
    }


def _is_integer(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "integer":
        return True
    return any(_is_integer(option) for option in schema.get("anyOf", ()))


@pytest.mark.parametrize(
    ("text", "number"), [("0", 0), ("7", 7), ("10", 10), (str(2**63 - 1), 2**63 - 1)]
)
def test_strict_decimal_reads_plain_digits(text: str, number: int) -> None:
    assert strict_decimal(text) == number


@pytest.mark.parametrize("text", [*loose_spellings(10).values(), "", "1\n", "1e3", "1 0"])
def test_strict_decimal_refuses_everything_else(text: str) -> None:
    with pytest.raises(ValueError):
        strict_decimal(text)
