"""Parameter types shared by every feature's request schemas.

Wire types are strict: a stampIdx must be a JSON integer in 1..2^63-1, not a
string, a float, a bool or null. A mistyped parameter is 1001 naming it.

Integers written as text (query strings, the stamp page's form fields, the
inside of a cursor) follow the same rule as a JSON integer, through one
function, ``strict_decimal``: ASCII digits only, no sign, no leading zeros,
no ``_``, no spaces, at most 19 digits. Python's ``int()`` and pydantic's lax
mode would take ``1_0`` as 10, and ``+1``, `` 1 ``, ``1.0``, ``١`` or ``²``
as numbers; an id read loosely can name another stamp than the one meant.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import (
    BeforeValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictInt,
    StrictStr,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from stampbook.kit.errors import Code, StampbookError

MAX_ID = 2**63 - 1


YMD_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
# A JSON integer's grammar without the sign: [0-9] is ASCII only (\d is not),
# and 19 digits are enough for 2^63 - 1, so no text longer than that is
# ever handed to int().
DECIMAL_PATTERN = re.compile(r"0|[1-9][0-9]{0,18}")


def strict_decimal(value: str, *, maximum: int = MAX_ID) -> int:
    """The whole number ``value`` spells in ASCII digits, at most ``maximum``.

    Raises ``ValueError`` for anything else (the caller names the field).
    """
    if not DECIMAL_PATTERN.fullmatch(value):
        raise ValueError("must be a whole number in ASCII digits")
    number = int(value)
    if number > maximum:
        raise ValueError(f"must be at most {maximum}")
    return number


def _query_integer(value: object) -> object:
    # Query values arrive as text; defaults (None, an int) pass untouched.
    return strict_decimal(value) if isinstance(value, str) else value


def _ymd(value: object) -> date:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not YMD_PATTERN.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("must be a real date as YYYY-MM-DD") from exc


# An http(s) URL at least ten characters long, stated as a pattern so that
# the OpenAPI document carries the very rule pydantic enforces (a fuzzer then
# generates URLs the server takes). Matched from the start, not whole.
HTTP_URL_PATTERN = r"^(?:http://[\s\S]{3}|https://[\s\S]{2})"


def _not_null(value: object) -> object:
    if value is None:
        raise ValueError("must not be null")
    return value


class _NotNull:
    """An optional field that refuses null when sent (1001): it may be left
    out, never null. Its JSON schema is its type without the ``null`` branch,
    so the document says what the server checks."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_before_validator_function(_not_null, handler(source))

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        branches = schema.get("anyOf")
        if branches:
            others = [branch for branch in branches if branch.get("type") != "null"]
            if len(others) == 1:
                rest = {key: value for key, value in schema.items() if key != "anyOf"}
                return {**others[0], **rest}
            schema = {**schema, "anyOf": others}
        return schema


Idx = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
# Every integer in a query string goes through strict_decimal first.
QueryInteger = BeforeValidator(_query_integer)
QueryIdx = Annotated[int, QueryInteger, Query(ge=1, le=MAX_ID)]
OptionalQueryIdx = Annotated[int | None, QueryInteger, Query(ge=1, le=MAX_ID)]
YN = Literal["Y", "N"]
Ymd = Annotated[date, BeforeValidator(_ymd)]
HttpUrl = Annotated[StrictStr, Field(max_length=2000, pattern=HTTP_URL_PATTERN)]
ShortText = Annotated[StrictStr, Field(max_length=200)]
Memo = Annotated[StrictStr, Field(max_length=1000)]
UserId = Annotated[StrictStr, Field(min_length=1, max_length=100)]
NotNull = _NotNull()
Limit = Annotated[int, QueryInteger, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=200)]

DEFAULT_PAGE_SIZE = 20


def encode_cursor(last_idx: int) -> str:
    """An opaque cursor that resumes after ``last_idx``."""
    return base64.urlsafe_b64encode(f"i:{last_idx}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The idx a cursor resumes after; 1001 (cursor) when it is not one of ours."""
    if cursor is None or cursor == "":
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        if not text.startswith("i:"):
            raise ValueError(text)
        value = strict_decimal(text[2:])
        if value < 1:
            raise ValueError(text)
        return value
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise StampbookError(Code.INVALID_PARAMETER, param="cursor") from exc
