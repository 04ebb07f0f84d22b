"""GET /api/stamp/v1/stats on a constructed ledger with known answers: days in
Asia/Seoul (UTC+9) cut at local midnight to the second, a stamp moved between
cards counted for the card each event happened on, zeros for quiet days."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import Api
from tests.stats.ledger import Ledger

UTC_ = datetime  # stored instants are naive UTC
DAYS = ["2026-03-01", "2026-03-02", "2026-03-03"]
NAMES = ["stampsAdded", "stampsRemoved", "cardsIssued", "cardsCompleted", "rewardsRedeemed"]


def day(date: str, added: int = 0, removed: int = 0, issued: int = 0, completed: int = 0,
        redeemed: int = 0) -> dict[str, Any]:  # fmt: skip
    values = [date, added, removed, issued, completed, redeemed]
    return dict(zip(["date", *NAMES], values, strict=True))


@pytest.fixture
async def seoul(database_url: str, api: Api) -> AsyncIterator[dict[str, int]]:
    """The account in Asia/Seoul with three customers' stamps (see each line)."""
    ledger = Ledger(database_url, api.account_idx)
    await ledger.set_timezone("Asia/Seoul")
    a = await ledger.card(3, "A")
    b = await ledger.card(5, "B")
    # s1 (u1): issued 23:59:59 on Feb 28 in Seoul (outside the range), full on
    # Mar 2 at 00:00:00 Seoul, 1 day and 1 second after its issue; redeemed.
    s1 = await ledger.stamp(
        a, user_id="u1", created=UTC_(2026, 2, 28, 14, 59, 59), max_stamps=3, stamps=3, use_yn="Y"
    )
    await ledger.adds(
        s1, a, 0,
        UTC_(2026, 2, 28, 15, 0, 0),  # Mar 1 00:00:00 in Seoul: the range's first second
        UTC_(2026, 3, 1, 14, 59, 59),  # Mar 1 23:59:59
        UTC_(2026, 3, 1, 15, 0, 0),  # Mar 2 00:00:00: completes
    )  # fmt: skip
    await ledger.event(s1, a, "USE", 3, 3, UTC_(2026, 3, 2, 3, 0, 0))
    # s2 (u2): issued Mar 2, one stamp taken back, then one on the range's
    # last second and one just after it.
    s2 = await ledger.stamp(
        a, user_id="u2", created=UTC_(2026, 3, 2, 1, 0, 0), max_stamps=3, stamps=2
    )
    await ledger.adds(s2, a, 0, UTC_(2026, 3, 2, 1, 0, 5))
    await ledger.event(s2, a, "REMOVE", 1, 0, UTC_(2026, 3, 2, 1, 0, 10))
    await ledger.adds(s2, a, 0, UTC_(2026, 3, 3, 14, 59, 59), UTC_(2026, 3, 3, 15, 0, 0))
    # s3 (u1 again): full on card A (3) within minutes, then moved to card B
    # (5) and filled again there: two completions, one per card.
    s3 = await ledger.stamp(
        a, user_id="u1", created=UTC_(2026, 3, 1, 0, 30), max_stamps=5, moved_to=b, stamps=5
    )
    await ledger.adds(
        s3, a, 0, UTC_(2026, 3, 1, 0, 31), UTC_(2026, 3, 1, 0, 32), UTC_(2026, 3, 1, 0, 33)
    )
    await ledger.event(s3, b, "UPDATE", 3, 3, UTC_(2026, 3, 2, 0, 0))
    await ledger.adds(s3, b, 3, UTC_(2026, 3, 3, 0, 0), UTC_(2026, 3, 3, 0, 1))
    # Neither counts today: switched off, or expired.
    await ledger.stamp(a, user_id="u4", created=UTC_(2025, 1, 1), max_stamps=3, active_yn="N")
    await ledger.stamp(
        a, user_id="u5", created=UTC_(2025, 1, 1), max_stamps=3,
        end_ymd=datetime(2025, 12, 31).date(),
    )  # fmt: skip
    await ledger.close()
    yield {"a": a, "b": b, "s1": s1, "s2": s2, "s3": s3}


async def stats(api: Api, **params: Any) -> dict[str, Any]:
    return dict(await api.ok("GET", "stats", params=params))


async def test_the_whole_account_over_three_days_in_seoul(
    api: Api, seoul: dict[str, int], other_api: Api
) -> None:
    await other_api.add(await other_api.stamp())  # another account's ledger stays out
    result = await stats(api, **{"from": DAYS[0], "to": DAYS[-1]})
    assert list(result) == ["from", "to", "cardIdx", "totals", "daily", "progress"]
    assert (result["from"], result["to"], result["cardIdx"]) == (DAYS[0], DAYS[-1], None)
    assert result["totals"] == {
        "stampsAdded": 10,
        "stampsRemoved": 1,
        "cardsIssued": 2,
        "activeCustomers": 2,
        "cardsCompleted": 3,
        "rewardsRedeemed": 1,
        "completionRate": 1.5,
        "redemptionRate": 0.3333,
        "medianDaysToComplete": 1.0,
    }
    assert list(result["totals"]) == [
        "stampsAdded", "stampsRemoved", "cardsIssued", "activeCustomers", "cardsCompleted",
        "rewardsRedeemed", "completionRate", "redemptionRate", "medianDaysToComplete",
    ]  # fmt: skip
    assert [list(row) for row in result["daily"]] == [["date", *NAMES]] * 3
    assert result["daily"] == [
        day(DAYS[0], added=5, issued=1, completed=1),
        day(DAYS[1], added=2, removed=1, issued=1, completed=1, redeemed=1),
        day(DAYS[2], added=3, completed=1),
    ]
    # Today: s2 holds 2 stamps, s3 holds 5; s1 is redeemed, the others unusable.
    assert result["progress"] == [{"stamps": 2, "count": 1}, {"stamps": 5, "count": 1}]


async def test_a_moved_stamp_counts_for_the_card_each_event_named(
    api: Api, seoul: dict[str, int]
) -> None:
    card_a = await stats(api, **{"from": DAYS[0], "to": DAYS[-1], "cardIdx": seoul["a"]})
    assert card_a["cardIdx"] == seoul["a"]
    assert card_a["totals"] == {
        "stampsAdded": 8,
        "stampsRemoved": 1,
        "cardsIssued": 2,
        "activeCustomers": 2,
        "cardsCompleted": 2,
        "rewardsRedeemed": 1,
        "completionRate": 1.0,
        "redemptionRate": 0.5,
        "medianDaysToComplete": 0.5,
    }
    assert card_a["daily"] == [
        day(DAYS[0], added=5, issued=1, completed=1),
        day(DAYS[1], added=2, removed=1, issued=1, completed=1, redeemed=1),
        day(DAYS[2], added=1),
    ]
    assert card_a["progress"] == [{"stamps": 2, "count": 1}]

    card_b = await stats(api, **{"from": DAYS[0], "to": DAYS[-1], "cardIdx": seoul["b"]})
    assert card_b["totals"] == {
        "stampsAdded": 2,
        "stampsRemoved": 0,
        "cardsIssued": 0,
        "activeCustomers": 1,
        "cardsCompleted": 1,
        "rewardsRedeemed": 0,
        "completionRate": None,
        "redemptionRate": 0.0,
        "medianDaysToComplete": 1.0,
    }
    assert card_b["daily"] == [day(DAYS[0]), day(DAYS[1]), day(DAYS[2], added=2, completed=1)]
    assert card_b["progress"] == [{"stamps": 5, "count": 1}]


async def test_one_day_is_cut_at_seoul_midnight(api: Api, seoul: dict[str, int]) -> None:
    first = await stats(api, **{"from": DAYS[0], "to": DAYS[0]})
    assert first["daily"] == [day(DAYS[0], added=5, issued=1, completed=1)]
    before = await stats(api, **{"from": "2026-02-28", "to": "2026-02-28"})
    assert before["daily"] == [day("2026-02-28", issued=1)]
    after = await stats(api, **{"from": "2026-03-04", "to": "2026-03-04"})
    assert after["daily"] == [day("2026-03-04", added=1)]


async def test_quiet_days_are_zeros_and_rates_are_null(api: Api, seoul: dict[str, int]) -> None:
    quiet = await stats(api, **{"from": "2026-02-01", "to": "2026-02-02"})
    assert quiet["daily"] == [day("2026-02-01"), day("2026-02-02")]
    assert quiet["totals"] == {
        "stampsAdded": 0,
        "stampsRemoved": 0,
        "cardsIssued": 0,
        "activeCustomers": 0,
        "cardsCompleted": 0,
        "rewardsRedeemed": 0,
        "completionRate": None,
        "redemptionRate": None,
        "medianDaysToComplete": None,
    }


async def test_the_default_range_is_the_last_30_days_in_the_account_zone(
    api: Api, seoul: dict[str, int]
) -> None:
    api.clock.at = datetime(2026, 3, 3, 15, 0, 0, tzinfo=UTC)  # Mar 4 00:00 in Seoul
    result = await stats(api)
    assert (result["from"], result["to"]) == ("2026-02-03", "2026-03-04")
    assert len(result["daily"]) == 30
    assert result["totals"]["stampsAdded"] == 11
    only_to = await stats(api, to="2026-03-03")
    assert (only_to["from"], only_to["to"]) == ("2026-02-02", "2026-03-03")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"to": "03/03/2026"}, "to"),
        ({"from": "2026-03-04", "to": "2026-03-03"}, "from"),
        ({"from": "2025-01-01", "to": "2026-01-02"}, "to"),
        ({"to": "0001-01-01"}, "to"),
        ({"from": "1969-12-31", "to": "1970-01-05"}, "from"),
        ({"cardIdx": "abc"}, "cardIdx"),
        ({"cardIdx": "0"}, "cardIdx"),
    ],
)
async def test_malformed_parameters_are_400_naming_the_field(
    api: Api, params: dict[str, str], field: str
) -> None:
    response = await api.call("GET", "stats", params=params)
    body = response.json()
    assert (response.status_code, body["code"], body["result"]) == (400, 1001, None)
    assert field in body["message"]


async def test_another_accounts_card_is_not_found_and_a_key_is_required(
    api: Api, other_api: Api
) -> None:
    foreign = await other_api.card()
    assert await api.code("GET", "stats", params={"cardIdx": foreign}) == 2101
    response = await api.http.get("/api/stamp/v1/stats")
    assert (response.status_code, response.json()["code"]) == (401, 1101)
