"""The retry rules: the schedule of docs/webhooks.md, jitter, Retry-After, and what
counts as done."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from stampbook.webhooks.schedule import (
    MAX_ATTEMPTS,
    Verdict,
    decide,
    parse_retry_after,
    retry_delay,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SCHEDULE = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
]


def test_a_failing_message_is_tried_eight_times_on_the_documented_schedule() -> None:
    pauses = []
    for attempts_made in range(1, MAX_ATTEMPTS):
        decision = decide(status_code=500, attempts_made=attempts_made, now=NOW, jitter=0)
        assert decision.verdict is Verdict.RETRY
        assert decision.next_attempt_at is not None
        pauses.append(decision.next_attempt_at - NOW)
    assert pauses == SCHEDULE
    last = decide(status_code=500, attempts_made=MAX_ATTEMPTS, now=NOW, jitter=0)
    assert last.verdict is Verdict.FAILED and last.next_attempt_at is None


def test_jitter_spreads_retries_within_ten_percent() -> None:
    rng = random.Random(7)
    delays = {retry_delay(4, rng=rng) for _ in range(50)}
    assert len(delays) > 40
    assert all(timedelta(hours=1.8) <= d <= timedelta(hours=2.2) for d in delays)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_any_2xx_is_delivered(status: int) -> None:
    assert decide(status_code=status, attempts_made=1, now=NOW).verdict is Verdict.DELIVERED


@pytest.mark.parametrize("status", [None, 100, 301, 307, 400, 401, 404, 429, 500, 502, 503])
def test_anything_else_is_retried(status: int | None) -> None:
    assert decide(status_code=status, attempts_made=1, now=NOW).verdict is Verdict.RETRY


def test_410_gone_is_final_even_on_the_first_attempt() -> None:
    assert decide(status_code=410, attempts_made=1, now=NOW).verdict is Verdict.GONE


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_replaces_the_schedule_on_429_and_503(status: int) -> None:
    decision = decide(status_code=status, attempts_made=1, now=NOW, retry_after="90", jitter=0)
    assert decision.next_attempt_at == NOW + timedelta(seconds=90)
    http_date = "Sun, 01 Mar 2026 13:00:00 GMT"
    decision = decide(status_code=status, attempts_made=1, now=NOW, retry_after=http_date)
    assert decision.next_attempt_at == NOW + timedelta(hours=1)


def test_retry_after_is_ignored_on_other_statuses_and_when_unreadable() -> None:
    assert decide(
        status_code=500, attempts_made=1, now=NOW, retry_after="90", jitter=0
    ).next_attempt_at == NOW + timedelta(seconds=5)
    assert decide(
        status_code=429, attempts_made=1, now=NOW, retry_after="soon", jitter=0
    ).next_attempt_at == NOW + timedelta(seconds=5)


def test_retry_after_is_capped_at_a_day_and_never_in_the_past() -> None:
    assert parse_retry_after("9999999", now=NOW) == timedelta(hours=24)
    assert parse_retry_after("Sat, 01 Jan 2000 00:00:00 GMT", now=NOW) == timedelta(0)
    assert parse_retry_after(None, now=NOW) is None
    assert parse_retry_after("", now=NOW) is None
