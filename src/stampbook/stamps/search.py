"""Customer search: the dashboard's Customers page (and anything else that
looks a customer up by what the counter knows about them).

A search matches a text, case-insensitively and anywhere inside it, against
the stamp's userId, name, phone and email; narrows to one card and to one
state; and pages newest first (highest stampIdx first) with an opaque
keyset cursor, so a page costs the same at the millionth stamp as at the
first.

The five states are defined once, here, in Python (``state_of_stamp``, for a
row already read) and in SQL (``STATE_SQL``, for the filter), both from the
validate rules in ``stamps/rules.py``: a stamp's state is what validate would
answer about it today, so the two can never disagree (a test checks them
against each other over every combination, on both databases):

- ``inactive``: switched off (activeYn N), or its period has not started;
- ``expired``: its period ended before today;
- ``redeemed``: its reward was used;
- ``complete``: usable today and full (the reward can be redeemed);
- ``active``: usable today and not yet full (stamps can be added).

The precedence is validate's (inactive, not started, expired, redeemed): an
expired card whose reward was used is ``expired``, as validate says 2005.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, get_args

from sqlalchemy import Row, and_, bindparam, literal_column, not_, or_
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from stampbook.db.schema import SEARCH_SEPARATOR, SEARCHED_COLUMNS, SEARCHED_TEXT_SQL, stamp
from stampbook.kit.context import CallContext
from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.params import decode_cursor, encode_cursor
from stampbook.stamps import rules
from stampbook.stamps.repository import _VIEW_SELECT, _usable_today

CustomerState = Literal["active", "complete", "redeemed", "expired", "inactive"]
STATES: tuple[CustomerState, ...] = get_args(CustomerState)

# A unit separator nobody types: ``search`` drops it from texts.
FIELD_SEPARATOR = SEARCH_SEPARATOR
MAX_QUERY_LENGTH = 100
_LIKE_ESCAPE = "\\"


def state_of_stamp(state: rules.StampState, today: date) -> CustomerState:
    """The customer state of a stamp today: validate's refusal, else full or not."""
    refusal = rules.usability_refusal(state, today)
    if refusal in (Code.STAMP_INACTIVE, Code.STAMP_NOT_STARTED):
        return "inactive"
    if refusal is Code.STAMP_EXPIRED:
        return "expired"
    if refusal is Code.STAMP_REDEEMED:
        return "redeemed"
    return "complete" if rules.completes(state.stamps, state.max_stamps) else "active"


def _state_sql(today: Any) -> dict[CustomerState, ColumnElement[bool]]:
    """Each state as a condition on the stamp row, in validate's precedence."""
    inactive = or_(stamp.c.active_yn != "Y", stamp.c.strt_ymd > today)
    expired = and_(not_(inactive), stamp.c.end_ymd < today)
    usable = and_(*_usable_today(today))
    full = rules.completes(stamp.c.stamps, stamp.c.max_stamps)
    return {
        "inactive": inactive,
        "expired": expired,
        "redeemed": and_(not_(inactive), not_(expired), stamp.c.use_yn == "Y"),
        "complete": and_(usable, full),
        "active": and_(usable, not_(full)),
    }


STATE_SQL = _state_sql(bindparam("p_today"))


def searched_text() -> ColumnElement[str]:
    """The one text a search looks in: the searched fields, lower-cased, joined
    by ``FIELD_SEPARATOR`` (``db.schema.SEARCHED_TEXT_SQL``, which migration
    0007 indexes by trigram on PostgreSQL)."""
    return literal_column(SEARCHED_TEXT_SQL)


def text_matches(dialect: str, pattern: str) -> ColumnElement[bool]:
    """The search's condition for a LIKE ``pattern``. PostgreSQL matches the
    indexed ``searched_text()``; SQLite, whose LIKE already ignores ASCII case
    (and only ASCII case, as its ``lower`` does), matches each field in turn,
    which saves building and lower-casing one text per stamp it scans."""
    if dialect == "postgresql":
        return searched_text().like(pattern, escape=_LIKE_ESCAPE)
    return or_(*(stamp.c[name].like(pattern, escape=_LIKE_ESCAPE) for name in SEARCHED_COLUMNS))


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards in ``text`` escaped, lower-cased."""
    escaped = (
        text.lower()
        .replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
        .replace("%", _LIKE_ESCAPE + "%")
        .replace("_", _LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"


@dataclass(frozen=True, slots=True)
class Found:
    """One stamp a search found: its view row (the stamp's columns and its
    card's, as ``stamps.repository.view`` returns) and its state today."""

    row: Row[Any]
    state: CustomerState


@dataclass(frozen=True, slots=True)
class SearchPage:
    """A page of results, newest first; ``next_cursor`` resumes after the last
    (None on the last page)."""

    items: list[Found]
    next_cursor: str | None


async def search(
    conn: AsyncConnection,
    ctx: CallContext,
    *,
    text: str | None = None,
    card_idx: int | None = None,
    state: CustomerState | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> SearchPage:
    """Find the account's stamps (customers' cards), newest first.

    - ``text``: matched case-insensitively anywhere in userId, name, phone or
      email (``"010-12"``, ``"kim"``, ``"@example.com"``); blank or None
      matches every stamp. Longer than 100 characters is refused (1001,
      ``q``). On SQLite only ASCII letters fold case (SQLite's ``lower``);
      Korean has no case, so it matches as typed.
    - ``card_idx``: only stamps currently on that card (another account's
      card simply matches nothing).
    - ``state``: one of ``STATES``, as defined in this module's docstring,
      judged on ``ctx.today`` (the account's time zone).
    - ``limit``: 1..100 rows per page; ``cursor``: ``next_cursor`` of the
      previous page (1001 ``cursor`` when it is not one of ours).

    Runs in the caller's transaction or read connection; reads only.
    """
    if text is not None and len(text) > MAX_QUERY_LENGTH:
        raise StampbookError(Code.INVALID_PARAMETER, param="q")
    if not 1 <= limit <= 100:
        raise StampbookError(Code.INVALID_PARAMETER, param="limit")
    if state is not None and state not in STATES:
        raise StampbookError(Code.INVALID_PARAMETER, param="state")
    before = decode_cursor(cursor)
    query = _VIEW_SELECT.where(stamp.c.account_idx == ctx.account_idx)
    needle = (text or "").replace(FIELD_SEPARATOR, "").strip()
    if needle:
        query = query.where(text_matches(conn.dialect.name, like_pattern(needle)))
    if card_idx is not None:
        query = query.where(stamp.c.card_idx == card_idx)
    if state is not None:
        query = query.where(STATE_SQL[state])
    if before is not None:
        query = query.where(stamp.c.stamp_idx < before)
    query = query.order_by(stamp.c.stamp_idx.desc()).limit(limit + 1)
    rows = list((await conn.execute(query, {"p_today": ctx.today})).all())
    shown = rows[:limit]
    items = [Found(row, state_of_stamp(rules.state_of(row), ctx.today)) for row in shown]
    more = len(rows) > limit and shown
    return SearchPage(items, encode_cursor(int(shown[-1].stamp_idx)) if more else None)
