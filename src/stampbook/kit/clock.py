"""Time, injectable: the app reads the clock from its state so tests can move it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


class Clock:
    """Wall-clock time in UTC; subclass or replace ``now`` in tests."""

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        return datetime.now(UTC)

    def today(self, zone: ZoneInfo) -> date:
        """Today's date in ``zone`` (the account's time zone)."""
        return self.now().astimezone(zone).date()


class FrozenClock(Clock):
    """A clock that stays where it is put: for tests of dates, intervals and retries."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        """The instant the clock is set to."""
        return self.at

    def advance(self, **delta: float) -> None:
        """Move the clock forward by a ``timedelta(**delta)``."""
        from datetime import timedelta

        self.at = self.at + timedelta(**delta)


def utc_naive(moment: datetime) -> datetime:
    """The instant as a naive UTC datetime, the form stored in the database."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def format_ymdt(stored: datetime, zone: ZoneInfo) -> str:
    """A stored (naive UTC) timestamp as ``YYYY-MM-DD HH:MM:SS`` in ``zone``."""
    return stored.replace(tzinfo=UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
