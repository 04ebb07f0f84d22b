"""The add, the remove and the validate on the driver's own connection: the
lunch-rush paths.

An accepted add is the service's most frequent write, and the remove its
undo. ``try_change`` does either whole (Idempotency-Key row with its stored
response, conditional UPDATE, ledger row, outbox messages) in the fewest
steps each database allows:

- PostgreSQL: **one statement**, data-modifying CTEs in autocommit, so one
  round trip and one implicit transaction, and the stamp's row lock is held
  for that statement only. The webhook payload is rendered by the statement
  itself (``json_build_object``, the same fields, order and values as
  ``views.render_stamp`` and ``outbox.build_payload``; a test compares them;
  the dispatcher sends every payload in orjson's compact form).
- SQLite: the same steps as separate statements inside one ``BEGIN
  IMMEDIATE`` transaction on the inline ``sqlite3`` connection.

It only ever takes the path where the change is accepted. When a rule
refuses, the key already exists (a retry, a concurrent twin, a reused key)
or the database reports a deadlock, it changes nothing and returns False,
and the caller answers through the general path (``Call.write`` with the
service function), which claims the key first, replays, or diagnoses the
refusal. Exactly-once holds on both: on PostgreSQL the key row is inserted by
the same statement as the UPDATE, so a twin's committed key makes the whole
statement fail on the unique index and roll back; on SQLite, writers are
serialised and the key is claimed before the UPDATE.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import BigInteger, Integer, bindparam, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from stampbook.db.schema import idempotency_key
from stampbook.kit.clock import format_ymdt
from stampbook.kit.context import CallContext
from stampbook.kit.db import Database
from stampbook.kit.driver import DriverStatement
from stampbook.kit.envelope import OK_NULL_BODY
from stampbook.stamps import repository as repo
from stampbook.stamps.service import (
    ACTION_ADD,
    ACTION_REMOVE,
    add_events,
    event_payloads,
    usable_view,
)
from stampbook.stamps.views import DEFAULT_STAMP_IMAGE_PATH, PAYLOAD_VERSION
from stampbook.webhooks import outbox

log = logging.getLogger("stampbook.stamps")

# The response an accepted change stores for replay, as Call.write stores it.
CHANGED_STATUS = 200
CHANGED_BODY = OK_NULL_BODY

_STAMP_DOMAIN = "rtrim(coalesce(nullif(upd.domain, ''), CAST(:public_url AS text)), '/')"
_DATE = "to_char({}, 'YYYY-MM-DD')"

# The payload, field for field as outbox.build_payload(render_stamp(row)) writes it
# (without views.SECRET_FIELDS: no on-site password in a webhook).
_PAYLOAD_FIELDS = (
    ("stampIdx", "upd.stamp_idx"),
    ("domain", _STAMP_DOMAIN),
    ("cardIdx", "upd.card_idx"),
    ("cardNm", "upd.card_nm"),
    ("cardTtl", "upd.card_ttl"),
    ("stamps", "upd.stamps"),
    ("maxStamps", "upd.max_stamps"),
    ("stampUrl", f"{_STAMP_DOMAIN} || '/s/' || upd.token"),
    ("url", "upd.url"),
    ("strtYmd", _DATE.format("upd.strt_ymd")),
    ("endYmd", _DATE.format("upd.end_ymd")),
    ("onsiteYn", "upd.onsite_yn"),
    ("memo", "upd.memo"),
    ("activeYn", "upd.active_yn"),
    ("userId", "upd.user_id"),
    ("userNm", "upd.user_nm"),
    ("userPhnno", "upd.user_phnno"),
    ("userEml", "upd.user_eml"),
    ("userEtc1", "upd.user_etc1"),
    ("userEtc2", "upd.user_etc2"),
    (
        "stampImgUrl",
        "coalesce(nullif(upd.stamp_img_url, ''), "
        f"CAST(:public_url AS text) || '{DEFAULT_STAMP_IMAGE_PATH}')",
    ),
    (
        "regYmdt",
        "to_char(timezone(CAST(:zone AS text), upd.reg_ymdt AT TIME ZONE 'UTC'), "
        "'YYYY-MM-DD HH24:MI:SS')",
    ),
    ("payloadVersion", f"'{PAYLOAD_VERSION}'"),
    ("stampsBefore", "upd.stamps - ({delta})"),
    ("stampsAfter", "upd.stamps"),
    ("source", "CAST(:source AS text)"),
    ("eventIdx", "ledger.event_idx"),
)


def _payload_sql(delta: int) -> str:
    """The payload expression for a change of ``delta`` stamps."""
    fields = ", ".join(f"'{name}', {sql.format(delta=delta)}" for name, sql in _PAYLOAD_FIELDS)
    return (
        "json_build_object('type', kind.event_type, 'timestamp', CAST(:timestamp AS text), "
        f"'data', json_build_object({fields}))"
    )


_VIEW_RETURNING = """
    RETURNING stamp.stamp_idx, stamp.card_idx, stamp.token, stamp.domain, stamp.stamps,
        stamp.strt_ymd, stamp.end_ymd, stamp.active_yn, stamp.memo, stamp.user_id,
        stamp.user_nm, stamp.user_phnno, stamp.user_eml, stamp.user_etc1, stamp.user_etc2,
        stamp.reg_ymdt, card.card_nm, card.card_ttl, card.max_stamps, card.url,
        card.stamp_img_url, card.onsite_yn, card.onsite_pwd"""

# The add's conditional UPDATE: the same rules as repository.ADD_ONE.
_ADD_UPDATE = f"""
    UPDATE stamp SET stamps = stamp.stamps + 1, last_add_ms = :now_ms
    FROM card
    WHERE stamp.stamp_idx = :stamp_idx AND stamp.account_idx = :account_idx
      AND card.card_idx = stamp.card_idx
      AND stamp.active_yn = 'Y' AND stamp.use_yn = 'N'
      AND stamp.strt_ymd <= :today AND stamp.end_ymd >= :today
      AND stamp.stamps < stamp.max_stamps
      AND (card.min_interval_sec <= 0 OR stamp.last_add_ms IS NULL
           OR stamp.last_add_ms + card.min_interval_sec * 1000 <= :now_ms)
    {_VIEW_RETURNING}"""
# The remove's, as repository.REMOVE_ONE: never below zero, never once redeemed.
_REMOVE_UPDATE = f"""
    UPDATE stamp SET stamps = stamp.stamps - 1
    FROM card
    WHERE stamp.stamp_idx = :stamp_idx AND stamp.account_idx = :account_idx
      AND card.card_idx = stamp.card_idx
      AND stamp.use_yn = 'N' AND stamp.stamps > 0
    {_VIEW_RETURNING}"""


def _one_statement(
    update: str, *, action: str, delta: int, kinds: str, when: str
) -> DriverStatement:
    """A whole accepted change as one PostgreSQL statement: ``update`` (a
    conditional UPDATE … RETURNING the view), the key row with its stored
    response, the ledger row, and one outbox message per event of ``kinds``
    (``(position, event type, message id prefix)`` rows) that ``when`` keeps,
    for every matching endpoint."""
    return DriverStatement(
        text(
            f"""
WITH upd AS ({update}
),
claimed AS (
    INSERT INTO idempotency_key
        (account_idx, idem_key, fingerprint, status_code, response_body, created_at)
    SELECT :account_idx, CAST(:idem_key AS text), CAST(:fingerprint AS text),
        CAST(:status_code AS integer), CAST(:response_body AS bytea), CAST(:now AS timestamp)
    FROM upd
    WHERE CAST(:idem_key AS text) IS NOT NULL
),
ledger AS (
    INSERT INTO stamp_event (account_idx, stamp_idx, card_idx, action, stamps_before,
        stamps_after, source, key_idx, idempotency_key, reg_ymdt)
    SELECT :account_idx, upd.stamp_idx, upd.card_idx, '{action}', upd.stamps - ({delta}),
        upd.stamps, CAST(:source AS text), CAST(:key_idx AS bigint), CAST(:idem_key AS text),
        CAST(:now AS timestamp)
    FROM upd
    RETURNING event_idx
),
messages AS (
    INSERT INTO webhook_message (msg_id, webhook_idx, account_idx, stamp_idx, event_type,
        payload, status, attempts, next_attempt_at, created_at)
    SELECT kind.msg_prefix || CAST(endpoint.webhook_idx AS text), endpoint.webhook_idx,
        :account_idx, upd.stamp_idx, kind.event_type,
        CAST({_payload_sql(delta)} AS text),
        'pending', 0, CAST(:now AS timestamp), CAST(:now AS timestamp)
    FROM upd
    CROSS JOIN ledger
    CROSS JOIN (VALUES {kinds}) AS kind (position, event_type, msg_prefix)
    JOIN webhook_endpoint AS endpoint
      ON endpoint.account_idx = :account_idx AND endpoint.active_yn = 'Y'
     AND (endpoint.card_idx IS NULL OR endpoint.card_idx = upd.card_idx)
     AND (endpoint.events IS NULL
          OR strpos(endpoint.events, ',' || kind.event_type || ',') > 0)
    WHERE {when}
    -- The ids follow this order: a stamp's "added" is delivered before its "completed".
    ORDER BY kind.position, endpoint.webhook_idx
)
SELECT upd.stamps FROM upd
"""
        )
        .bindparams(
            bindparam("stamp_idx", type_=BigInteger),
            bindparam("account_idx", type_=BigInteger),
        )
        .columns(stamps=Integer),
        name="Changed",
    )


_FIRST_KIND = "CAST(:first_prefix AS text)"
_ADD_POSTGRESQL = _one_statement(
    _ADD_UPDATE,
    action=ACTION_ADD,
    delta=1,
    kinds=f"(1, '{outbox.STAMP_ADDED}', {_FIRST_KIND}), "
    f"(2, '{outbox.STAMP_COMPLETED}', CAST(:second_prefix AS text))",
    when="kind.position = 1 OR upd.stamps >= upd.max_stamps",
)
_REMOVE_POSTGRESQL = _one_statement(
    _REMOVE_UPDATE,
    action=ACTION_REMOVE,
    delta=-1,
    kinds=f"(1, '{outbox.STAMP_REMOVED}', {_FIRST_KIND})",
    when="kind.position = 1",
)

_CLAIM_SQLITE = DriverStatement(
    sqlite_insert(idempotency_key)
    .values(
        account_idx=bindparam("account_idx"),
        idem_key=bindparam("idem_key"),
        fingerprint=bindparam("fingerprint"),
        status_code=bindparam("status_code"),
        response_body=bindparam("response_body"),
        created_at=bindparam("now"),
    )
    .on_conflict_do_nothing()
    .returning(idempotency_key.c.idem_key)
)
_INSERT_EVENT = DriverStatement(repo.INSERT_EVENT_VALUES, name="Event")
_ENQUEUE = DriverStatement(outbox.ENQUEUE)
_VIEW_BY_IDX = DriverStatement(repo.VIEW_BY_IDX, name="StampView")


@dataclass(frozen=True, slots=True)
class Change:
    """One stamp verb the hot path can do whole."""

    action: str
    delta: int  # stamps after minus stamps before
    postgresql: DriverStatement
    sqlite_update: DriverStatement  # the conditional UPDATE … RETURNING the view
    events: Callable[[Any], tuple[str, ...]]  # the outbox events of the row after


ADD = Change(
    action=ACTION_ADD,
    delta=1,
    postgresql=_ADD_POSTGRESQL,
    sqlite_update=DriverStatement(repo.ADD_ONE, name="StampView"),
    events=add_events,
)
REMOVE = Change(
    action=ACTION_REMOVE,
    delta=-1,
    postgresql=_REMOVE_POSTGRESQL,
    sqlite_update=DriverStatement(repo.REMOVE_ONE, name="StampView"),
    events=lambda _after: (outbox.STAMP_REMOVED,),
)


class _NotChanged(Exception):
    """The change was not accepted here: roll back and let the general path answer."""


async def try_change(
    db: Database, ctx: CallContext, change: Change, *, stamp_idx: int, fingerprint: str | None
) -> bool:
    """Do ``change`` to one stamp, with its key row, ledger row and outbox
    messages, if every rule allows it now; True when it did. False changes
    nothing."""
    if not db.has_driver_path:
        return False
    values = {
        "stamp_idx": stamp_idx,
        "account_idx": ctx.account_idx,
        "now_ms": ctx.now_ms,
        "today": ctx.today,
        "now": ctx.now_naive,
        "idem_key": ctx.idempotency_key,
        "fingerprint": fingerprint,
        "status_code": CHANGED_STATUS,
        "response_body": CHANGED_BODY,
        "source": ctx.source,
        "key_idx": ctx.key_idx,
    }
    if db.is_sqlite:
        try:
            async with db.driver_write() as conn:
                await _change_sqlite(conn, ctx, change, values)
        except _NotChanged:
            return False
        return True
    values.update(
        first_prefix=outbox.message_prefix(),
        second_prefix=outbox.message_prefix(),
        timestamp=format_ymdt(ctx.now_naive, ctx.zone),
        public_url=ctx.public_url,
        zone=ctx.zone.key,
    )
    try:
        async with db.driver() as conn:
            return await change.postgresql.first(conn, values) is not None
    except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError):
        # The key exists (or a twin holding it waits for this row): the whole
        # statement rolled back; the general path replays or refuses.
        return False
    except asyncpg.InvalidParameterValueError:
        # A time zone Python knows and this PostgreSQL's tz database does not
        # (an older tzdata on the database host): the statement rolled back,
        # and the general path renders the payload in Python instead.
        log.warning("PostgreSQL does not know time zone %s; using the general path", ctx.zone.key)
        return False


async def _change_sqlite(
    conn: sqlite3.Connection, ctx: CallContext, change: Change, values: dict[str, Any]
) -> None:
    if ctx.idempotency_key is not None and await _CLAIM_SQLITE.first(conn, values) is None:
        raise _NotChanged
    after = await change.sqlite_update.first(
        conn,
        {
            "p_stamp_idx": values["stamp_idx"],
            "p_account_idx": values["account_idx"],
            "p_today": values["today"],
            "p_now_ms": values["now_ms"],
        },
    )
    if after is None:
        raise _NotChanged
    stamps_before = after.stamps - change.delta
    event = await _INSERT_EVENT.first(
        conn,
        {
            "account_idx": ctx.account_idx,
            "stamp_idx": after.stamp_idx,
            "card_idx": after.card_idx,
            "action": change.action,
            "stamps_before": stamps_before,
            "stamps_after": after.stamps,
            "source": ctx.source,
            "key_idx": ctx.key_idx,
            "idempotency_key": ctx.idempotency_key,
            "reg_ymdt": values["now"],
        },
    )
    assert event is not None
    payloads = event_payloads(
        ctx, after, change.events(after), stamps_before=stamps_before, event_idx=event.event_idx
    )
    for event_type, payload in payloads:
        await _ENQUEUE.run(
            conn,
            outbox.enqueue_values(
                ctx,
                event_type=event_type,
                card_idx=after.card_idx,
                stamp_idx=after.stamp_idx,
                payload=payload,
            ),
        )


async def validate(db: Database, ctx: CallContext, *, stamp_idx: int) -> dict[str, Any]:
    """validate's result: the stamp when it exists, is active, within its dates
    and not redeemed (the same rules and view as ``service.validate``)."""
    async with db.driver() as conn:
        row = await _VIEW_BY_IDX.first(
            conn, {"p_stamp_idx": stamp_idx, "p_account_idx": ctx.account_idx}
        )
    return usable_view(ctx, row)
