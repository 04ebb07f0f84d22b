"""Helpers for the receipt-code tests: codes made through the API, read back
straight from the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from stampbook.db.schema import stamp_code
from tests.conftest import Api, rows


async def new_code(api: Api, card_idx: int, **fields: Any) -> dict[str, Any]:
    """POST code/create; its result (codeIdx, code, url, expiresYmdt)."""
    result: dict[str, Any] = await api.ok(
        "POST", "code/create", json={"cardIdx": card_idx, **fields}
    )
    return result


async def claim(api: Api, code: str, stamp_idx: int, **kwargs: Any) -> int:
    """PUT code/claim; the envelope's code."""
    return await api.code("PUT", "code/claim", json={"code": code, "stampIdx": stamp_idx}, **kwargs)


async def stored_codes(database_url: str, account_idx: int) -> list[Any]:
    """The account's code rows, oldest first."""
    return await rows(
        database_url,
        select(stamp_code)
        .where(stamp_code.c.account_idx == account_idx)
        .order_by(stamp_code.c.code_idx),
    )
