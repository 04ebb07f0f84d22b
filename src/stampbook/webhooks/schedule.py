"""When a message is tried again, as pure functions of plain values.

The schedule is Standard Webhooks' customary one (docs/webhooks.md): the first
attempt at once, then retries 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h after
the previous failure; after the eighth failed attempt the message is failed
(and can be replayed). Delays carry a little jitter so that a receiver coming
back from an outage is not hit by every retry in the same second.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1  # the immediate attempt plus every retry
DEFAULT_JITTER = 0.1  # ±10 %
MAX_RETRY_AFTER = timedelta(hours=24)
RETRY_AFTER_STATUSES = frozenset({429, 503})
GONE = 410


class Verdict(enum.Enum):
    """What becomes of a message after one attempt."""

    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    GONE = "gone"  # failed, and the endpoint is disabled


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict of an attempt and, for a retry, when the next one is due."""

    verdict: Verdict
    next_attempt_at: datetime | None = None


def retry_delay(
    attempts_made: int, *, jitter: float = DEFAULT_JITTER, rng: random.Random | None = None
) -> timedelta:
    """The pause after the ``attempts_made``-th failed attempt (1-based), with jitter."""
    base = RETRY_DELAYS[attempts_made - 1]
    if jitter <= 0:
        return base
    factor = 1 + (rng or random).uniform(-jitter, jitter)
    return base * factor


def parse_retry_after(value: str | None, *, now: datetime) -> timedelta | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as a pause; None when absent
    or unreadable. Capped at a day, never negative."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        delay = timedelta(seconds=int(value))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        delay = when - now
    return max(timedelta(0), min(delay, MAX_RETRY_AFTER))


def decide(
    *,
    status_code: int | None,
    attempts_made: int,
    now: datetime,
    retry_after: str | None = None,
    jitter: float = DEFAULT_JITTER,
    rng: random.Random | None = None,
) -> Decision:
    """Judge one attempt: ``status_code`` None means no answer (timeout, refused, …).

    2xx is delivered; 410 is failed and disables the endpoint; anything else is
    retried until the schedule runs out. ``Retry-After`` on 429 and 503 replaces
    the scheduled pause: the receiver knows best when it can take the message.
    """
    if status_code is not None and 200 <= status_code < 300:
        return Decision(Verdict.DELIVERED)
    if status_code == GONE:
        return Decision(Verdict.GONE)
    if attempts_made >= MAX_ATTEMPTS:
        return Decision(Verdict.FAILED)
    delay = retry_delay(attempts_made, jitter=jitter, rng=rng)
    if status_code in RETRY_AFTER_STATUSES:
        asked = parse_retry_after(retry_after, now=now)
        if asked is not None:
            delay = asked
    return Decision(Verdict.RETRY, now + delay)
