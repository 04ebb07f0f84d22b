"""The stamp rules as pure functions: which rule refuses, in which order."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from stampbook.kit.errors import Code
from stampbook.stamps import rules

TODAY = date(2026, 6, 15)
USABLE = rules.StampState(
    active=True,
    used=False,
    strt=date(2026, 1, 1),
    end=date(2026, 12, 31),
    stamps=3,
    max_stamps=10,
)


def test_a_usable_stamp_can_be_validated_added_and_removed() -> None:
    assert rules.usability_refusal(USABLE, TODAY) is None
    assert rules.add_refusal(USABLE, TODAY, now_ms=0) is None
    assert rules.remove_refusal(USABLE) is None


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"active": False}, Code.STAMP_INACTIVE),
        ({"strt": date(2026, 6, 16)}, Code.STAMP_NOT_STARTED),
        ({"end": date(2026, 6, 14)}, Code.STAMP_EXPIRED),
        ({"used": True}, Code.STAMP_REDEEMED),
    ],
)
def test_each_usability_rule_names_itself(change: dict[str, object], code: Code) -> None:
    state = replace(USABLE, **change)  # type: ignore[arg-type]
    assert rules.usability_refusal(state, TODAY) is code
    assert rules.add_refusal(state, TODAY, now_ms=0) is code


def test_the_first_day_and_the_last_day_are_inside_the_period() -> None:
    assert rules.usability_refusal(replace(USABLE, strt=TODAY, end=TODAY), TODAY) is None


def test_refusals_come_in_the_documented_order() -> None:
    everything_wrong = replace(
        USABLE, active=False, strt=date(2027, 1, 1), end=date(2025, 1, 1), used=True, stamps=10
    )
    assert rules.add_refusal(everything_wrong, TODAY, now_ms=0) is Code.STAMP_INACTIVE
    not_started_and_redeemed = replace(USABLE, strt=date(2027, 1, 1), used=True, stamps=10)
    assert rules.add_refusal(not_started_and_redeemed, TODAY, 0) is Code.STAMP_NOT_STARTED
    expired_and_full = replace(USABLE, end=date(2026, 1, 2), stamps=10)
    assert rules.add_refusal(expired_and_full, TODAY, 0) is Code.STAMP_EXPIRED
    redeemed_and_full = replace(USABLE, used=True, stamps=10)
    assert rules.add_refusal(redeemed_and_full, TODAY, 0) is Code.STAMP_REDEEMED


def test_add_stops_at_the_maximum() -> None:
    assert rules.add_refusal(replace(USABLE, stamps=9), TODAY, 0) is None
    assert rules.add_refusal(replace(USABLE, stamps=10), TODAY, 0) is Code.STAMP_FULL


def test_full_is_answered_before_too_soon() -> None:
    state = replace(USABLE, stamps=10, min_interval_sec=60, last_add_ms=1_000)
    assert rules.add_refusal(state, TODAY, now_ms=1_001) is Code.STAMP_FULL


def test_the_minimum_interval_counts_from_the_previous_add() -> None:
    state = replace(USABLE, min_interval_sec=60, last_add_ms=1_000_000)
    assert rules.add_refusal(state, TODAY, now_ms=1_059_999) is Code.TOO_SOON
    assert rules.add_refusal(state, TODAY, now_ms=1_060_000) is None
    assert rules.add_refusal(replace(state, last_add_ms=None), TODAY, 0) is None
    assert rules.add_refusal(replace(state, min_interval_sec=0), TODAY, 1_000_000) is None


def test_remove_ignores_dates_and_activity_but_not_redemption_or_zero() -> None:
    lapsed = replace(USABLE, active=False, end=date(2020, 1, 1))
    assert rules.remove_refusal(lapsed) is None
    assert rules.remove_refusal(replace(USABLE, used=True)) is Code.STAMP_REDEEMED
    assert rules.remove_refusal(replace(USABLE, stamps=0)) is Code.STAMP_EMPTY
    assert rules.remove_refusal(replace(USABLE, stamps=0, used=True)) is Code.STAMP_REDEEMED


def test_redeem_needs_a_complete_usable_card() -> None:
    assert rules.redeem_refusal(USABLE, TODAY) is Code.STAMP_NOT_COMPLETE
    assert rules.redeem_refusal(replace(USABLE, stamps=10), TODAY) is None
    assert rules.redeem_refusal(replace(USABLE, stamps=10, used=True), TODAY) is Code.STAMP_REDEEMED


def test_the_period_may_not_end_before_it_starts_nor_beyond_five_years() -> None:
    assert rules.period_refusal(TODAY, TODAY, TODAY) is None
    assert rules.period_refusal(TODAY, date(2031, 6, 15), TODAY) is None
    assert rules.period_refusal(TODAY, date(2031, 6, 16), TODAY) is Code.INVALID_PERIOD
    assert rules.period_refusal(TODAY, date(2026, 6, 14), TODAY) is Code.INVALID_PERIOD


def test_five_years_from_a_leap_day_is_the_last_day_of_february() -> None:
    assert rules.latest_end(date(2028, 2, 29)) == date(2033, 2, 28)


def test_a_count_set_directly_may_reach_but_not_pass_the_maximum() -> None:
    assert rules.count_refusal(10, 10) is None
    assert rules.count_refusal(11, 10) is Code.STAMP_FULL
