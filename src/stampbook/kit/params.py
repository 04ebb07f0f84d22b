"""Parameter types shared by every feature's request schemas.

Wire types are strict: a stampIdx must be a JSON integer in 1..2^63-1, not a
string, a float, a bool or null. A mistyped parameter is 1001 naming it.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import date
from typing import Annotated, Literal

from fastapi import Query
from pydantic import AfterValidator, BeforeValidator, Field, StrictInt, StrictStr

from stampbook.kit.errors import Code, StampbookError

MAX_ID = 2**63 - 1


YMD_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")


def _ymd(value: object) -> date:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not YMD_PATTERN.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("must be a real date as YYYY-MM-DD") from exc


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or len(value) < 10:
        raise ValueError("must be an http(s) URL")
    return value


def _not_null(value: object) -> object:
    if value is None:
        raise ValueError("must not be null")
    return value


Idx = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
QueryIdx = Annotated[int, Query(ge=1, le=MAX_ID)]
OptionalQueryIdx = Annotated[int | None, Query(ge=1, le=MAX_ID)]
YN = Literal["Y", "N"]
Ymd = Annotated[date, BeforeValidator(_ymd)]
HttpUrl = Annotated[StrictStr, Field(max_length=2000), AfterValidator(_http_url)]
ShortText = Annotated[StrictStr, Field(max_length=200)]
Memo = Annotated[StrictStr, Field(max_length=1000)]
UserId = Annotated[StrictStr, Field(min_length=1, max_length=100)]
NotNull = BeforeValidator(_not_null)
Limit = Annotated[int, Query(ge=1, le=100)]
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
        value = int(text[2:])
        if not 1 <= value <= MAX_ID:
            raise ValueError(text)
        return value
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise StampbookError(Code.INVALID_PARAMETER, param="cursor") from exc
