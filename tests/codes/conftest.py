"""Helpers for the receipt-code tests: codes made through the API, read back
straight from the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from stampbook.db.schema import stamp_code, stamp_event
from stampbook.kit.db import Database
from tests.conftest import Api


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
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            query = (
                select(stamp_code)
                .where(stamp_code.c.account_idx == account_idx)
                .order_by(stamp_code.c.code_idx)
            )
            return list((await conn.execute(query)).all())
    finally:
        await database.dispose()


async def ledger(database_url: str, stamp_idx: int) -> list[Any]:
    """The stamp's ledger rows, oldest first."""
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            query = (
                select(stamp_event)
                .where(stamp_event.c.stamp_idx == stamp_idx)
                .order_by(stamp_event.c.event_idx)
            )
            return list((await conn.execute(query)).all())
    finally:
        await database.dispose()
