"""The bare baseline: the least a server can do to answer an add and a validate.

A minimal FastAPI app served like Stampbook (uvicorn, uvloop, httptools, the
same number of workers), with nothing but the SQL. No auth, no
Idempotency-Key, no rate limiter, no outbox, no rule diagnosis, no logging.
``make bench`` divides Stampbook's numbers by these to get the ratios.

- PostgreSQL (raw asyncpg pool): an add is **one statement**, the conditional
  ``UPDATE … RETURNING`` feeding the ledger ``INSERT`` in a CTE (one round
  trip, autocommit); a validate is one ``SELECT`` joined with the card,
  answering the same 24 fields as Stampbook's validate.
- SQLite (stdlib ``sqlite3``, WAL, one connection per worker, on the event
  loop's thread): an add is the same ``UPDATE … RETURNING`` then the ledger
  ``INSERT`` inside one ``BEGIN IMMEDIATE``; the write lock is taken without
  blocking the loop (no busy timeout, retried asleep every 0.3 ms, as
  Stampbook does); a validate is the same ``SELECT``.

Configured by environment: ``BARE_DATABASE_URL`` (``postgres://…`` or
``sqlite:///path``), ``BARE_ACCOUNT_IDX`` and ``BARE_POOL_SIZE``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Query
from fastapi.responses import Response
from pydantic import BaseModel

# PostgreSQL: one statement per change. $1 stamp, $2 account, $3 now (ms), $4 today, $5 now.
PG_ADD_SQL = """
WITH changed AS (
  UPDATE stamp SET stamps = stamp.stamps + 1, last_add_ms = $3
  FROM card
  WHERE stamp.stamp_idx = $1 AND stamp.account_idx = $2 AND card.card_idx = stamp.card_idx
    AND stamp.active_yn = 'Y' AND stamp.use_yn = 'N'
    AND stamp.strt_ymd <= $4 AND stamp.end_ymd >= $4
    AND stamp.stamps < stamp.max_stamps
    AND (card.min_interval_sec <= 0 OR stamp.last_add_ms IS NULL
         OR stamp.last_add_ms + card.min_interval_sec * 1000 <= $3)
  RETURNING stamp.card_idx, stamp.stamps
)
INSERT INTO stamp_event
  (account_idx, stamp_idx, card_idx, action, stamps_before, stamps_after, source, reg_ymdt)
SELECT $2, $1, card_idx, 'ADD', stamps - 1, stamps, 'API', $5 FROM changed
RETURNING event_idx
"""
PG_REMOVE_SQL = """
WITH changed AS (
  UPDATE stamp SET stamps = stamps - 1
  WHERE stamp_idx = $1 AND account_idx = $2 AND use_yn = 'N' AND stamps > 0
  RETURNING card_idx, stamps
)
INSERT INTO stamp_event
  (account_idx, stamp_idx, card_idx, action, stamps_before, stamps_after, source, reg_ymdt)
SELECT $2, $1, card_idx, 'REMOVE', stamps + 1, stamps, 'API', $3 FROM changed
RETURNING event_idx
"""
_VALIDATE_COLUMNS = """
SELECT s.stamp_idx, s.domain, s.card_idx, c.card_nm, c.card_ttl, s.stamps, c.max_stamps,
       s.token, c.url, s.strt_ymd, s.end_ymd, c.onsite_yn, c.onsite_pwd, s.memo, s.active_yn,
       s.user_id, s.user_nm, s.user_phnno, s.user_eml, s.user_etc1, s.user_etc2,
       c.stamp_img_url, s.reg_ymdt
FROM stamp s JOIN card c ON c.card_idx = s.card_idx
"""
PG_VALIDATE_SQL = (
    _VALIDATE_COLUMNS
    + """WHERE s.stamp_idx = $1 AND s.account_idx = $2 AND s.active_yn = 'Y' AND s.use_yn = 'N'
  AND s.strt_ymd <= $3 AND s.end_ymd >= $3"""
)

# SQLite: the same statements, two in one BEGIN IMMEDIATE. Named parameters.
LITE_ADD_SQL = """
UPDATE stamp SET stamps = stamp.stamps + 1, last_add_ms = :now_ms
FROM card
WHERE stamp.stamp_idx = :stamp AND stamp.account_idx = :account
  AND card.card_idx = stamp.card_idx
  AND stamp.active_yn = 'Y' AND stamp.use_yn = 'N'
  AND stamp.strt_ymd <= :today AND stamp.end_ymd >= :today
  AND stamp.stamps < stamp.max_stamps
  AND (card.min_interval_sec <= 0 OR stamp.last_add_ms IS NULL
       OR stamp.last_add_ms + card.min_interval_sec * 1000 <= :now_ms)
RETURNING card_idx, stamps
"""
LITE_REMOVE_SQL = """
UPDATE stamp SET stamps = stamps - 1
WHERE stamp_idx = :stamp AND account_idx = :account AND use_yn = 'N' AND stamps > 0
RETURNING card_idx, stamps
"""
LITE_EVENT_SQL = """
INSERT INTO stamp_event
  (account_idx, stamp_idx, card_idx, action, stamps_before, stamps_after, source, reg_ymdt)
VALUES (:account, :stamp, :card, :action, :before, :after, 'API', :now)
"""
LITE_VALIDATE_SQL = (
    _VALIDATE_COLUMNS
    + """WHERE s.stamp_idx = ? AND s.account_idx = ? AND s.active_yn = 'Y' AND s.use_yn = 'N'
  AND s.strt_ymd <= ? AND s.end_ymd >= ?"""
)
WRITE_LOCK_POLL_SECONDS = 0.0003  # as Stampbook's kit/sqlite_inline.py
WRITE_WAIT_SECONDS = 30.0

OK_NULL = b'{"code":0,"message":"","result":null}'
REFUSED = b'{"code":2006,"message":"refused","result":null}'
PUBLIC_URL = os.environ.get("BARE_PUBLIC_URL", "http://127.0.0.1")

DATABASE_URL = os.environ["BARE_DATABASE_URL"]
SQLITE = DATABASE_URL.startswith("sqlite:///")
ACCOUNT_IDX = int(os.environ.get("BARE_ACCOUNT_IDX", "1"))
pool: asyncpg.Pool | None = None
lite: sqlite3.Connection | None = None


def _open_sqlite() -> sqlite3.Connection:
    conn = sqlite3.connect(
        DATABASE_URL.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # as Stampbook's kit/db.py
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=0")
    return conn


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    global pool, lite
    if SQLITE:
        lite = _open_sqlite()
        try:
            yield
        finally:
            lite.close()
        return
    size = int(os.environ.get("BARE_POOL_SIZE", "10"))
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=size, max_size=size)
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(lifespan=lifespan)


class StampRef(BaseModel):
    stampIdx: int


def _answer(changed: bool) -> Response:
    return Response(OK_NULL if changed else REFUSED, media_type="application/json")


async def _begin_immediate(conn: sqlite3.Connection) -> None:
    """Take SQLite's write lock without blocking the loop while another worker holds it."""
    deadline = asyncio.get_running_loop().time() + WRITE_WAIT_SECONDS
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(WRITE_LOCK_POLL_SECONDS)


async def _lite_change(sql: str, action: str, delta: int, params: dict[str, Any]) -> bool:
    assert lite is not None
    await _begin_immediate(lite)
    try:
        row = lite.execute(sql, params).fetchone()
        if row is not None:
            lite.execute(
                LITE_EVENT_SQL,
                {
                    **params,
                    "card": row[0],
                    "action": action,
                    "before": row[1] - delta,
                    "after": row[1],
                    "now": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
                },
            )
        lite.execute("COMMIT")
    except BaseException:
        lite.execute("ROLLBACK")
        raise
    return row is not None


@app.put("/api/stamp/v1/add")
async def add(body: StampRef) -> Response:
    now = datetime.now(UTC)
    now_ms = int(now.timestamp() * 1000)
    if SQLITE:
        params = {
            "stamp": body.stampIdx,
            "account": ACCOUNT_IDX,
            "now_ms": now_ms,
            "today": now.date().isoformat(),
        }
        return _answer(await _lite_change(LITE_ADD_SQL, "ADD", 1, params))
    assert pool is not None
    row = await pool.fetchrow(
        PG_ADD_SQL, body.stampIdx, ACCOUNT_IDX, now_ms, now.date(), now.replace(tzinfo=None)
    )
    return _answer(row is not None)


@app.put("/api/stamp/v1/remove")
async def remove(body: StampRef) -> Response:
    now = datetime.now(UTC)
    if SQLITE:
        params = {"stamp": body.stampIdx, "account": ACCOUNT_IDX}
        return _answer(await _lite_change(LITE_REMOVE_SQL, "REMOVE", -1, params))
    assert pool is not None
    row = await pool.fetchrow(PG_REMOVE_SQL, body.stampIdx, ACCOUNT_IDX, now.replace(tzinfo=None))
    return _answer(row is not None)


def _ymd(value: date | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


def _ymdt(value: datetime | str) -> str:
    return value[:19] if isinstance(value, str) else value.strftime("%Y-%m-%d %H:%M:%S")


@app.get("/api/stamp/v1/validate")
async def validate(stampIdx: int = Query()) -> Response:
    today = datetime.now(UTC).date()
    row: Any
    if SQLITE:
        assert lite is not None
        iso = today.isoformat()
        row = lite.execute(LITE_VALIDATE_SQL, (stampIdx, ACCOUNT_IDX, iso, iso)).fetchone()
    else:
        assert pool is not None
        row = await pool.fetchrow(PG_VALIDATE_SQL, stampIdx, ACCOUNT_IDX, today)
    if row is None:
        return _answer(False)
    domain = (row[1] or PUBLIC_URL).rstrip("/")
    result = {
        "stampIdx": row[0],
        "domain": domain,
        "cardIdx": row[2],
        "cardNm": row[3],
        "cardTtl": row[4],
        "stamps": row[5],
        "maxStamps": row[6],
        "stampUrl": f"{domain}/s/{row[7]}",
        "url": row[8],
        "strtYmd": _ymd(row[9]),
        "endYmd": _ymd(row[10]),
        "onsiteYn": row[11],
        "onsitePwd": row[12],
        "memo": row[13],
        "activeYn": row[14],
        "userId": row[15],
        "userNm": row[16],
        "userPhnno": row[17],
        "userEml": row[18],
        "userEtc1": row[19],
        "userEtc2": row[20],
        "stampImgUrl": row[21] or f"{PUBLIC_URL}/static/stamp/default.svg",
        "regYmdt": _ymdt(row[22]),
        "payloadVersion": "v1",
    }
    body = orjson.dumps({"code": 0, "message": "", "result": result})
    return Response(body, media_type="application/json")
