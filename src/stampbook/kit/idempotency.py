"""Idempotency-Key for write requests (IETF draft, Stripe semantics).

The key row is inserted first, in the same transaction as the write
(``INSERT … ON CONFLICT DO NOTHING``). A concurrent twin blocks on the
unique index until the first transaction commits, then finds the stored
response and replays it; a twin after a rollback claims the key itself. So
a key can never produce two writes, and no lock of our own is needed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.selectable import FromClause

from stampbook.db.schema import idempotency_key
from stampbook.kit.errors import Code, StampbookError

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_LENGTH = 255


# The key row of one request, with its stored response when the write is
# done in one step (stamps/hot_path.py; NULL until ``record`` otherwise).
# Parameters follow the stamp statements' convention (``p_`` + the value).
_CLAIM_VALUES = {
    "account_idx": "p_account_idx",
    "idem_key": "p_idem_key",
    "fingerprint": "p_fingerprint",
    "status_code": "p_status_code",
    "response_body": "p_response_body",
    "created_at": "p_now",
}


def claim_from(source: FromClause | None = None, *, dialect: str | None = None) -> Insert:
    """The claim: an INSERT of the key row (none without a key), once per row
    of ``source`` when given (the one-statement change claims only if its
    UPDATE matched). With ``dialect`` it does nothing on a conflict (the
    general path then replays); without, a conflict fails the statement (the
    one-statement change must roll back whole)."""
    row = select(
        *(
            bindparam(name, type_=idempotency_key.c[column].type)
            for column, name in _CLAIM_VALUES.items()
        )
    ).where(bindparam("p_idem_key", type_=idempotency_key.c.idem_key.type).is_not(None))
    if source is not None:
        row = row.select_from(source)
    inserter = {"postgresql": pg_insert, "sqlite": sqlite_insert}.get(dialect or "", insert)
    statement = inserter(idempotency_key).from_select(list(_CLAIM_VALUES), row)
    if dialect is not None:
        statement = statement.on_conflict_do_nothing()  # type: ignore[attr-defined]
    return statement


# Built once (see stamps/repository.py): the claim and the record run on every
# keyed write, and rebuilding them per call costs more than the round trip.
CLAIM = {
    dialect: claim_from(dialect=dialect).returning(idempotency_key.c.idem_key)
    for dialect in ("postgresql", "sqlite")
}
_RECORD = (
    update(idempotency_key)
    .where(
        idempotency_key.c.account_idx == bindparam("p_account_idx"),
        idempotency_key.c.idem_key == bindparam("p_idem_key"),
    )
    .values(status_code=bindparam("p_status_code"), response_body=bindparam("p_response_body"))
)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response kept for replay."""

    status_code: int
    body: bytes


def validate_key(raw: str | None) -> str | None:
    """The header's key, None when absent; 1303 when empty, blank, over 255
    characters, or holding control characters (which no column may store)."""
    if raw is None:
        return None
    if not 1 <= len(raw) <= MAX_LENGTH or not raw.strip() or not raw.isprintable():
        raise StampbookError(Code.IDEMPOTENCY_KEY_INVALID)
    return raw


def fingerprint(method: str, path: str, payload: object) -> str:
    """A digest of the request: method, path and canonical parameters."""
    canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


async def claim(
    conn: AsyncConnection, *, account_idx: int, key: str, fingerprint: str, now: datetime
) -> bool:
    """Insert the key row; False when the key already exists (committed)."""
    values = {
        "p_account_idx": account_idx,
        "p_idem_key": key,
        "p_fingerprint": fingerprint,
        "p_status_code": None,
        "p_response_body": None,
        "p_now": now,
    }
    return (await conn.execute(CLAIM[conn.dialect.name], values)).first() is not None


async def stored(
    conn: AsyncConnection, *, account_idx: int, key: str, fingerprint: str
) -> StoredResponse:
    """The stored response for an existing key: 1301 for another request, 1302 if unfinished."""
    row = (
        await conn.execute(
            select(
                idempotency_key.c.fingerprint,
                idempotency_key.c.status_code,
                idempotency_key.c.response_body,
            ).where(idempotency_key.c.account_idx == account_idx, idempotency_key.c.idem_key == key)
        )
    ).first()
    if row is not None and row.fingerprint != fingerprint:
        raise StampbookError(Code.IDEMPOTENCY_KEY_REUSED)
    if row is None or row.status_code is None:
        raise StampbookError(Code.IDEMPOTENCY_IN_FLIGHT)
    return StoredResponse(status_code=int(row.status_code), body=bytes(row.response_body))


async def record(
    conn: AsyncConnection, *, account_idx: int, key: str, response: StoredResponse
) -> None:
    """Store the response of the claimed key (same transaction as the write)."""
    await conn.execute(
        _RECORD,
        {
            "p_account_idx": account_idx,
            "p_idem_key": key,
            "p_status_code": response.status_code,
            "p_response_body": response.body,
        },
    )


async def purge(conn: AsyncConnection, *, now: datetime, retention_hours: int) -> int:
    """Delete keys older than the retention; returns how many went."""
    cutoff = now - timedelta(hours=retention_hours)
    result = await conn.execute(
        delete(idempotency_key).where(idempotency_key.c.created_at < cutoff)
    )
    return int(result.rowcount or 0)
