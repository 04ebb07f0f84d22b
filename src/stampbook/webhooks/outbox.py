"""The transactional outbox: webhook messages written with the change itself.

``enqueue`` runs inside the stamp change's transaction, so a committed change
always has its messages and a rolled-back one never does. One INSERT … SELECT
(``fan_out``) sends the event to every matching endpoint of the account
(none: no rows); the one-statement add composes the same INSERT over its
CTEs. A message stores the change's record, rendered when it is delivered.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from sqlalchemy import (
    Date,
    DateTime,
    Integer,
    String,
    Text,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement

from stampbook.db.schema import card, stamp, webhook_endpoint, webhook_message
from stampbook.kit.clock import format_ymdt
from stampbook.kit.context import CallContext, zone_for
from stampbook.stamps.views import RECEIVER_COLUMNS, render_stamp

log = logging.getLogger("stampbook.webhooks")

STAMP_CREATED = "stamp.created"
STAMP_ADDED = "stamp.added"
STAMP_REMOVED = "stamp.removed"
STAMP_UPDATED = "stamp.updated"
STAMP_COMPLETED = "stamp.completed"
STAMP_USED = "stamp.used"
STAMP_DELETED = "stamp.deleted"
STAMP_SUSPICIOUS = "stamp.suspicious"

EVENT_TYPES = (
    STAMP_CREATED,
    STAMP_ADDED,
    STAMP_REMOVED,
    STAMP_UPDATED,
    STAMP_COMPLETED,
    STAMP_USED,
    STAMP_DELETED,
    STAMP_SUSPICIOUS,
)


def build_payload(
    event_type: str,
    *,
    timestamp: str,
    stamp_view: dict[str, Any],
    stamps_before: int,
    stamps_after: int,
    source: str,
    event_idx: int | None,
    extra: dict[str, Any] | None = None,
) -> bytes:
    """The message body: ``{type, timestamp, data: {stamp…, counts, source,
    eventIdx, extra…}}``; ``extra`` is what one change adds (``nextStampIdx``
    of a renewing redemption, ``codeIdx`` of a claim)."""
    data = {
        **stamp_view,
        "stampsBefore": stamps_before,
        "stampsAfter": stamps_after,
        "source": source,
        "eventIdx": event_idx,
        **(extra or {}),
    }
    return orjson.dumps({"type": event_type, "timestamp": timestamp, "data": data})


# What a message row stores: the change's data, not its rendering. The payload
# is rendered from it, by ``views.render_stamp`` as the API renders a stamp,
# when the message is delivered or shown (``deliverable``). A row without the
# marker is a payload rendered by an older version, delivered as stored.
RECORD_MARKER = "stampbookRecord"
RECORD_VERSION = 1
# The stamp's columns a record keeps, by the view's labels, and how each one
# comes back from JSON (dates and timestamps travel as ISO text).
_RECORD_COLUMNS = RECEIVER_COLUMNS
_COLUMN_TYPES = {
    name: (stamp.c[name] if name in stamp.c else card.c[name]).type for name in _RECORD_COLUMNS
}
_PARSE: dict[str, Callable[[str], Any]] = {
    name: datetime.fromisoformat if isinstance(kind, DateTime) else date.fromisoformat
    for name, kind in _COLUMN_TYPES.items()
    if isinstance(kind, DateTime | Date)
}
PENDING = "pending"


def change_record(
    ctx: CallContext,
    row: Any,
    event_type: str,
    *,
    stamps_before: int,
    stamps_after: int,
    event_idx: int | None,
    extra: dict[str, Any] | None = None,
) -> str:
    """One message's record, built in Python from the stamp's view row."""
    record: dict[str, Any] = {
        RECORD_MARKER: RECORD_VERSION,
        "type": event_type,
        "at": ctx.now_naive,
        "zone": ctx.zone.key,
        "publicUrl": ctx.public_url,
        "stamp": {name: getattr(row, name) for name in _RECORD_COLUMNS},
        "stampsBefore": stamps_before,
        "stampsAfter": stamps_after,
        "source": ctx.source,
        "eventIdx": event_idx,
    }
    if extra:
        record["extra"] = extra
    return orjson.dumps(record).decode()


def change_record_sql(
    changed: Any, *, event_type: Any, stamps_before: Any, event_idx: Any
) -> ColumnElement[Any]:
    """The same record, built by PostgreSQL from ``changed`` (the columns of an
    UPDATE … RETURNING the stamp's view), the same keys and the same column
    list; the context's values are ``p_`` parameters."""

    def pairs(items: Sequence[tuple[str, Any]]) -> list[Any]:
        out: list[Any] = []
        for key, value in items:
            out += [literal_column(f"'{key}'"), value]
        return out

    stamp_json = func.json_build_object(*pairs([(n, changed[n]) for n in _RECORD_COLUMNS]))
    record = func.json_build_object(
        *pairs(
            [
                (RECORD_MARKER, literal_column(str(RECORD_VERSION))),
                ("type", event_type),
                ("at", bindparam("p_now", type_=DateTime)),
                ("zone", bindparam("p_zone", type_=String)),
                ("publicUrl", bindparam("p_public_url", type_=String)),
                ("stamp", stamp_json),
                ("stampsBefore", stamps_before),
                ("stampsAfter", changed["stamps"]),
                ("source", bindparam("p_source", type_=String)),
                ("eventIdx", event_idx),
            ]
        )
    )
    return cast(record, Text)


def deliverable(stored: str) -> bytes:
    """The bytes a message delivers: its record rendered as the payload
    (``build_payload`` of ``render_stamp`` without the staff password), or an
    older version's rendered payload exactly as stored."""
    message = orjson.loads(stored)
    if not isinstance(message, dict) or message.get(RECORD_MARKER) != RECORD_VERSION:
        return stored.encode()
    columns = message["stamp"]
    for name, parse in _PARSE.items():
        columns[name] = parse(columns[name])
    zone = _zone_named(message["zone"])
    public_url = message["publicUrl"]
    return build_payload(
        message["type"],
        timestamp=format_ymdt(datetime.fromisoformat(message["at"]), zone),
        stamp_view=render_stamp(
            SimpleNamespace(**columns), public_url=public_url, zone=zone, secrets=False
        ),
        stamps_before=message["stampsBefore"],
        stamps_after=message["stampsAfter"],
        source=message["source"],
        event_idx=message["eventIdx"],
        extra=message.get("extra"),
    )


def _zone_named(name: str) -> ZoneInfo:
    # The zone was valid where the change was made; a dispatcher on a host
    # whose tz database lacks it still delivers (in UTC) rather than stall.
    try:
        return zone_for(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("time zone %s is unknown here; rendering a webhook payload in UTC", name)
        return zone_for("UTC")


def fan_out(
    *,
    stamp_idx: Any,
    card_idx: Any,
    event_type: Any,
    msg_prefix: Any,
    payload: Any,
    froms: Sequence[Any] = (),
    where: Sequence[ColumnElement[bool]] = (),
    order_by: Sequence[Any] = (),
) -> Insert:
    """The outbox INSERT … SELECT: one message per active endpoint of the
    account that takes ``event_type`` for ``card_idx``, its id ``msg_prefix``
    plus the endpoint's idx. The values are expressions over ``froms`` (the
    one-statement change's CTEs) or bound parameters (``ENQUEUE``)."""
    endpoint = webhook_endpoint
    pattern = literal_column("','", String).concat(event_type).concat(literal_column("','"))
    source = select(
        msg_prefix.concat(cast(endpoint.c.webhook_idx, String)),
        endpoint.c.webhook_idx,
        bindparam("p_account_idx", type_=endpoint.c.account_idx.type),
        stamp_idx,
        event_type,
        payload,
        literal_column(f"'{PENDING}'", String),
        literal_column("0", Integer),
        bindparam("p_now", type_=DateTime),
        bindparam("p_now", type_=DateTime),
    )
    if froms:
        source = source.select_from(*froms)
    source = source.where(
        endpoint.c.account_idx == bindparam("p_account_idx", type_=endpoint.c.account_idx.type),
        endpoint.c.active_yn == "Y",
        or_(endpoint.c.card_idx.is_(None), endpoint.c.card_idx == card_idx),
        or_(endpoint.c.events.is_(None), endpoint.c.events.contains(pattern)),
        *where,
    ).order_by(*order_by, endpoint.c.webhook_idx)
    return insert(webhook_message).from_select(
        [
            "msg_id",
            "webhook_idx",
            "account_idx",
            "stamp_idx",
            "event_type",
            "payload",
            "status",
            "attempts",
            "next_attempt_at",
            "created_at",
        ],
        source,
    )


# Built once with bound parameters (the statement runs on every stamp change;
# rebuilding it per call was the largest item of an add's profile, see
# bench/README.md).
ENQUEUE = fan_out(
    stamp_idx=bindparam("p_stamp_idx", type_=webhook_message.c.stamp_idx.type),
    card_idx=bindparam("p_card_idx", type_=webhook_endpoint.c.card_idx.type),
    event_type=bindparam("p_event_type", type_=String),
    msg_prefix=bindparam("p_msg_prefix", type_=String),
    payload=bindparam("p_payload", type_=Text),
)


# Whether the account has an active endpoint at all: the SQLite add asks it
# inside its write transaction (so it sees every endpoint committed before)
# and renders no record when there is none. PostgreSQL's one statement needs
# no such step: it renders a record only for each endpoint its SELECT joins.
HAS_RECEIVER = (
    select(webhook_endpoint.c.webhook_idx)
    .where(
        webhook_endpoint.c.account_idx == bindparam("p_account_idx"),
        webhook_endpoint.c.active_yn == "Y",
    )
    .limit(1)
)


def message_prefix() -> str:
    """A fresh message-id prefix; each endpoint's message id is it plus the endpoint's idx."""
    return f"msg_{secrets.token_hex(12)}_"


def enqueue_values(
    ctx: CallContext,
    row: Any,
    event_type: str,
    *,
    stamps_before: int,
    event_idx: int | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``ENQUEUE``'s parameters for one event of the stamp whose view row after
    the change is ``row``."""
    return {
        "p_msg_prefix": message_prefix(),
        "p_account_idx": ctx.account_idx,
        "p_stamp_idx": row.stamp_idx,
        "p_card_idx": row.card_idx,
        "p_event_type": event_type,
        "p_payload": change_record(
            ctx,
            row,
            event_type,
            stamps_before=stamps_before,
            stamps_after=row.stamps,
            event_idx=event_idx,
            extra=extra,
        ),
        "p_now": ctx.now_naive,
    }


async def enqueue(
    conn: AsyncConnection,
    ctx: CallContext,
    row: Any,
    event_types: Sequence[str],
    *,
    stamps_before: int,
    event_idx: int | None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Queue each event of one change (in order) for every matching, active
    endpoint of the account."""
    for event_type in event_types:
        values = enqueue_values(
            ctx, row, event_type, stamps_before=stamps_before, event_idx=event_idx, extra=extra
        )
        await conn.execute(ENQUEUE, values)
