"""The stamp rules as pure functions of plain values (no database).

When several rules refuse a call, the first in this order answers: not found,
inactive, not started, expired, redeemed, then the verb's own rule (full,
empty, not complete, password, too soon, then the daily limit). ``remove`` checks only redeemed and
empty, so that a mistake can be undone on an expired or inactive card.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from stampbook.kit.errors import Code

PERIOD_YEARS = 5


@dataclass(frozen=True, slots=True)
class StampState:
    """What the rules look at."""

    active: bool
    used: bool
    strt: date
    end: date
    stamps: int
    max_stamps: int
    min_interval_sec: int = 0
    last_add_ms: int | None = None
    max_adds_per_day: int = 0
    day_ymd: date | None = None
    day_adds: int = 0


def state_of(row: Any) -> StampState:
    """The rule-relevant state of a stamp view row."""
    return StampState(
        active=row.active_yn == "Y",
        used=row.use_yn == "Y",
        strt=row.strt_ymd,
        end=row.end_ymd,
        stamps=row.stamps,
        max_stamps=row.max_stamps,
        min_interval_sec=row.min_interval_sec,
        last_add_ms=row.last_add_ms,
        max_adds_per_day=row.max_adds_per_day,
        day_ymd=row.day_ymd,
        day_adds=row.day_adds,
    )


def completes(stamps: Any, max_stamps: Any) -> Any:
    """True when a count fills the card: an add that reaches it is a completion
    too. Written once for plain values and for SQL columns alike (the
    one-statement add puts it in its WHERE, stamps/hot_path.py)."""
    return stamps >= max_stamps


def suspicious(day_adds: Any, threshold: Any) -> Any:
    """True when a stamp received more stamps today than the card's threshold
    (0: never). Written once for plain values and SQL columns alike, as
    ``completes``: ``&`` is ``and`` for both."""
    return (threshold > 0) & (day_adds > threshold)


def usability_refusal(state: StampState, today: date) -> Code | None:
    """Why the stamp cannot be used today (validate's rules), or None."""
    if not state.active:
        return Code.STAMP_INACTIVE
    if today < state.strt:
        return Code.STAMP_NOT_STARTED
    if today > state.end:
        return Code.STAMP_EXPIRED
    if state.used:
        return Code.STAMP_REDEEMED
    return None


def add_refusal(state: StampState, today: date, now_ms: int, count: int = 1) -> Code | None:
    """Why ``count`` more stamps (one, except for a receipt code worth more)
    may not be added, or None."""
    refusal = usability_refusal(state, today)
    if refusal is not None:
        return refusal
    if state.stamps + count > state.max_stamps:
        return Code.STAMP_FULL
    if too_soon(state, now_ms):
        return Code.TOO_SOON
    if state.max_adds_per_day > 0 and adds_on(state, today) + count > state.max_adds_per_day:
        return Code.DAILY_LIMIT
    return None


def adds_on(state: StampState, today: date) -> int:
    """The stamps this stamp received on ``today`` (its counter is of one day)."""
    return state.day_adds if state.day_ymd == today else 0


def too_soon(state: StampState, now_ms: int) -> bool:
    """True when the card's minimum interval since the last add has not passed."""
    if state.min_interval_sec <= 0 or state.last_add_ms is None:
        return False
    return now_ms < state.last_add_ms + state.min_interval_sec * 1000


def remove_refusal(state: StampState) -> Code | None:
    """Why a stamp may not be taken back, or None."""
    if state.used:
        return Code.STAMP_REDEEMED
    if state.stamps <= 0:
        return Code.STAMP_EMPTY
    return None


def redeem_refusal(state: StampState, today: date) -> Code | None:
    """Why the reward may not be redeemed (before the password check), or None."""
    refusal = usability_refusal(state, today)
    if refusal is not None:
        return refusal
    if state.stamps < state.max_stamps:
        return Code.STAMP_NOT_COMPLETE
    return None


def latest_end(today: date) -> date:
    """The last allowed ``endYmd``: five years from today (Feb 29 → Feb 28)."""
    try:
        return today.replace(year=today.year + PERIOD_YEARS)
    except ValueError:
        return today.replace(year=today.year + PERIOD_YEARS, day=28)


def next_period(strt: date, end: date, today: date) -> tuple[date, date]:
    """The period of a renewed card's next stamp: from today, as long as the
    redeemed stamp's was, within the five years any period may span."""
    return today, min(today + (end - strt), latest_end(today))


def issue_refusal(card_active_yn: str) -> Code | None:
    """Why a card may not issue a new stamp: a deactivated card issues none
    (every way of issuing, API, dashboard, receipt codes, a renewal, asks
    this). Its stamps already issued are not affected."""
    return Code.CARD_INACTIVE if card_active_yn != "Y" else None


def period_refusal(strt: date, end: date, today: date) -> Code | None:
    """2012 when ``end`` is before ``strt`` or more than five years from today."""
    if end < strt or end > latest_end(today):
        return Code.INVALID_PERIOD
    return None


def count_refusal(stamps: int, max_stamps: int) -> Code | None:
    """2006 when a count set directly would exceed the card's maximum."""
    return Code.STAMP_FULL if stamps > max_stamps else None
