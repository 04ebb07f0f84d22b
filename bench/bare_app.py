"""The bare baseline: what an add and a validate cost with nothing but the SQL.

A minimal FastAPI app over a raw asyncpg pool, served like Stampbook (uvicorn,
uvloop, httptools, the same number of workers). It has no auth, no
Idempotency-Key, no rate limiter, no outbox and no rule diagnosis: an add is
the same conditional UPDATE Stampbook runs plus one ledger INSERT, in one
transaction; a validate is one SELECT. ``make bench`` divides Stampbook's
numbers by these to get the ratios.

Configured by environment: ``BARE_DATABASE_URL`` (postgresql://…),
``BARE_ACCOUNT_IDX`` and ``BARE_POOL_SIZE``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Query
from fastapi.responses import Response
from pydantic import BaseModel

ADD_SQL = """
UPDATE stamp SET stamps = stamp.stamps + 1, last_add_ms = $3
FROM card
WHERE stamp.stamp_idx = $1 AND stamp.account_idx = $2 AND card.card_idx = stamp.card_idx
  AND stamp.active_yn = 'Y' AND stamp.use_yn = 'N'
  AND stamp.strt_ymd <= $4 AND stamp.end_ymd >= $4
  AND stamp.stamps < stamp.max_stamps
  AND (card.min_interval_sec <= 0 OR stamp.last_add_ms IS NULL
       OR stamp.last_add_ms + card.min_interval_sec * 1000 <= $3)
RETURNING stamp.card_idx, stamp.stamps
"""
REMOVE_SQL = """
UPDATE stamp SET stamps = stamps - 1
WHERE stamp_idx = $1 AND account_idx = $2 AND use_yn = 'N' AND stamps > 0
RETURNING card_idx, stamps
"""
EVENT_SQL = """
INSERT INTO stamp_event
  (account_idx, stamp_idx, card_idx, action, stamps_before, stamps_after, source, reg_ymdt)
VALUES ($1, $2, $3, $4, $5, $6, 'API', $7)
"""
VALIDATE_SQL = """
SELECT s.stamp_idx, s.domain, s.card_idx, c.card_nm, c.card_ttl, s.stamps, c.max_stamps,
       s.token, c.url, s.strt_ymd, s.end_ymd, c.onsite_yn, c.onsite_pwd, s.memo, s.active_yn,
       s.user_id, s.user_nm, s.user_phnno, s.user_eml, s.user_etc1, s.user_etc2,
       c.stamp_img_url, s.reg_ymdt
FROM stamp s JOIN card c ON c.card_idx = s.card_idx
WHERE s.stamp_idx = $1 AND s.account_idx = $2 AND s.active_yn = 'Y' AND s.use_yn = 'N'
  AND s.strt_ymd <= $3 AND s.end_ymd >= $3
"""
OK_NULL = b'{"code":0,"message":"","result":null}'
REFUSED = b'{"code":2006,"message":"refused","result":null}'
PUBLIC_URL = "http://127.0.0.1"

ACCOUNT_IDX = int(os.environ.get("BARE_ACCOUNT_IDX", "1"))
pool: asyncpg.Pool | None = None


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    global pool
    size = int(os.environ.get("BARE_POOL_SIZE", "10"))
    pool = await asyncpg.create_pool(os.environ["BARE_DATABASE_URL"], min_size=size, max_size=size)
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(lifespan=lifespan)


class StampRef(BaseModel):
    stampIdx: int


def _json(content: Any) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


async def _change(sql: str, action: str, delta: int, stamp_idx: int, *args: Any) -> Response:
    assert pool is not None
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(sql, stamp_idx, ACCOUNT_IDX, *args)
        if row is None:
            return Response(REFUSED, media_type="application/json")
        await conn.execute(
            EVENT_SQL,
            ACCOUNT_IDX,
            stamp_idx,
            row["card_idx"],
            action,
            row["stamps"] - delta,
            row["stamps"],
            now.replace(tzinfo=None),
        )
    return Response(OK_NULL, media_type="application/json")


@app.put("/api/stamp/v1/add")
async def add(body: StampRef) -> Response:
    now = datetime.now(UTC)
    now_ms = int(now.timestamp() * 1000)
    return await _change(ADD_SQL, "ADD", 1, body.stampIdx, now_ms, now.date())


@app.put("/api/stamp/v1/remove")
async def remove(body: StampRef) -> Response:
    return await _change(REMOVE_SQL, "REMOVE", -1, body.stampIdx)


@app.get("/api/stamp/v1/validate")
async def validate(stampIdx: int = Query()) -> Response:
    assert pool is not None
    row = await pool.fetchrow(VALIDATE_SQL, stampIdx, ACCOUNT_IDX, datetime.now(UTC).date())
    if row is None:
        return Response(REFUSED, media_type="application/json")
    domain = (row["domain"] or PUBLIC_URL).rstrip("/")
    result = {
        "stampIdx": row["stamp_idx"],
        "domain": domain,
        "cardIdx": row["card_idx"],
        "cardNm": row["card_nm"],
        "cardTtl": row["card_ttl"],
        "stamps": row["stamps"],
        "maxStamps": row["max_stamps"],
        "stampUrl": f"{domain}/s/{row['token']}",
        "url": row["url"],
        "strtYmd": row["strt_ymd"].isoformat(),
        "endYmd": row["end_ymd"].isoformat(),
        "onsiteYn": row["onsite_yn"],
        "onsitePwd": row["onsite_pwd"],
        "memo": row["memo"],
        "activeYn": row["active_yn"],
        "userId": row["user_id"],
        "userNm": row["user_nm"],
        "userPhnno": row["user_phnno"],
        "userEml": row["user_eml"],
        "userEtc1": row["user_etc1"],
        "userEtc2": row["user_etc2"],
        "stampImgUrl": row["stamp_img_url"] or f"{PUBLIC_URL}/static/stamp/default.svg",
        "regYmdt": row["reg_ymdt"].strftime("%Y-%m-%d %H:%M:%S"),
        "payloadVersion": "v1",
    }
    return _json({"code": 0, "message": "", "result": result})
