"""Helpers for the kit's tests: Idempotency-Key requests and what they leave
behind (the keys kept, the messages queued)."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from stampbook.db.schema import idempotency_key, webhook_message
from stampbook.kit.db import Database
from tests.conftest import Api

KEY = {"Idempotency-Key": "order-4711"}


async def stored_keys(database_url: str, account_idx: int) -> list[str]:
    """The Idempotency-Keys kept for an account."""
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            rows = await conn.execute(
                select(idempotency_key.c.idem_key).where(
                    idempotency_key.c.account_idx == account_idx
                )
            )
            return [row.idem_key for row in rows]
    finally:
        await database.dispose()


async def queued(database_url: str, stamp_idx: int, event_type: str) -> int:
    """How many webhook messages of a type were queued for a stamp."""
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            query = select(func.count()).where(
                webhook_message.c.stamp_idx == stamp_idx,
                webhook_message.c.event_type == event_type,
            )
            return int((await conn.execute(query)).scalar_one())
    finally:
        await database.dispose()


async def put_add(api: Api, stamp_idx: int, key: str = "order-4711") -> httpx.Response:
    return await api.call(
        "PUT", "add", json={"stampIdx": stamp_idx}, headers={"Idempotency-Key": key}
    )


def envelope(response: httpx.Response) -> tuple[int, int]:
    """(HTTP status, envelope code)."""
    return response.status_code, int(response.json()["code"])
