"""Customer search (stamps/search.py): by userId, name, phone or email, case-
insensitive and partial; by card and by state; newest first, a page at a time."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from stampbook.db.schema import stamp
from stampbook.kit.context import CallContext
from stampbook.kit.db import Database
from stampbook.kit.errors import StampbookError
from stampbook.stamps import rules, search
from tests.conftest import Api
from tests.stamps.conftest import days


def context(api: Api) -> CallContext:
    return CallContext(
        account_idx=api.account_idx,
        zone=ZoneInfo("UTC"),
        now=api.clock.now(),
        public_url="https://stamps.example.test",
    )


async def found(database_url: str, api: Api, **kwargs: Any) -> list[int]:
    """The stampIdx of every stamp the search finds, following the cursor."""
    database = Database(database_url, pool_size=1)
    try:
        idxs: list[int] = []
        cursor = None
        while True:
            async with database.read() as conn:
                page = await search.search(conn, context(api), cursor=cursor, **kwargs)
            idxs.extend(int(item.row.stamp_idx) for item in page.items)
            if page.next_cursor is None:
                return idxs
            cursor = page.next_cursor
    finally:
        await database.dispose()


async def test_text_matches_any_field_partially_and_ignores_case(
    database_url: str, api: Api, other_api: Api
) -> None:
    card = await api.card()
    kim = await api.stamp(card, userId="CUST-0042", userNm="Kim Minji")
    lee = await api.stamp(card, userNm="이서연", userPhnno="010-1234-5678")
    park = await api.stamp(card, userEml="Park@Example.COM")
    await other_api.stamp(userNm="Kim Minji")  # another account's customer

    assert await found(database_url, api, text="cust-00") == [kim]
    assert await found(database_url, api, text="MINJI") == [kim]
    assert await found(database_url, api, text="서연") == [lee]
    assert await found(database_url, api, text="1234-56") == [lee]
    assert await found(database_url, api, text="@example.com") == [park]
    assert await found(database_url, api, text="  ") == [park, lee, kim]
    assert await found(database_url, api, text="nobody") == []


async def test_text_never_matches_across_two_fields_nor_as_a_wildcard(
    database_url: str, api: Api
) -> None:
    card = await api.card()
    await api.stamp(card, userId="abc", userNm="def")
    percent = await api.stamp(card, userNm="100% coffee_fan")
    assert await found(database_url, api, text="cde") == []
    assert await found(database_url, api, text="c\x1fd") == []
    assert await found(database_url, api, text="%") == [percent]
    assert await found(database_url, api, text="e_f") == [percent]
    assert await found(database_url, api, text="0%") == [percent]
    assert await found(database_url, api, text="_") == [percent]


async def test_card_filter_and_pages_newest_first(database_url: str, api: Api) -> None:
    coffee, tea = await api.card(), await api.card(cardNm="Tea")
    coffees = [await api.stamp(coffee, userNm=f"guest {n}") for n in range(5)]
    teas = [await api.stamp(tea, userNm=f"guest {n}") for n in range(2)]
    assert await found(database_url, api, card_idx=coffee, limit=2) == coffees[::-1]
    assert await found(database_url, api, card_idx=tea, limit=1) == teas[::-1]
    assert await found(database_url, api, text="guest", limit=3) == (coffees + teas)[::-1]

    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            first = await search.search(conn, context(api), card_idx=coffee, limit=5)
        assert first.next_cursor is None and len(first.items) == 5
        async with database.read() as conn:
            with pytest.raises(StampbookError) as refused:
                await search.search(conn, context(api), cursor="not-a-cursor")
            assert refused.value.param == "cursor"
            with pytest.raises(StampbookError) as refused:
                await search.search(conn, context(api), text="x" * 101)
            assert refused.value.param == "q"
    finally:
        await database.dispose()


async def test_each_state_is_what_validate_would_say(database_url: str, api: Api) -> None:
    """Every combination of switch, redemption, period and fullness: the SQL
    filter puts each stamp in exactly the state the Python definition gives,
    and the found rows carry that state."""
    card = await api.card(maxStamps=3)
    today = api.today
    periods = {
        "not started": (today + days(1), today + days(9)),
        "current": (today - days(1), today + days(9)),
        "ended": (today - days(9), today - days(1)),
        "ends today": (today - days(9), today),
    }
    expected: dict[int, str] = {}
    for active, used, (strt, end), count in itertools.product(
        "YN", "YN", periods.values(), (0, 2, 3)
    ):
        idx = await api.stamp(card, strtYmd=strt.isoformat(), endYmd=end.isoformat())
        await api.ok(
            "PUT",
            "update",
            json={"stampIdx": idx, "activeYn": active, "useYn": used, "stamps": count},
        )
        plain = rules.StampState(
            active=active == "Y", used=used == "Y", strt=strt, end=end, stamps=count, max_stamps=3
        )
        expected[idx] = search.state_of_stamp(plain, today)

    assert set(expected.values()) == set(search.STATES)
    for state in search.STATES:
        members = sorted((idx for idx, s in expected.items() if s == state), reverse=True)
        assert await found(database_url, api, state=state, limit=7) == members, state

    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            page = await search.search(conn, context(api), limit=100)
    finally:
        await database.dispose()
    assert {int(item.row.stamp_idx): item.state for item in page.items} == expected


def test_state_definitions_in_words() -> None:
    today = date(2026, 6, 15)

    def state(**changes: Any) -> str:
        values: dict[str, Any] = {
            "active": True,
            "used": False,
            "strt": date(2026, 6, 1),
            "end": date(2026, 6, 30),
            "stamps": 4,
            "max_stamps": 10,
        }
        return search.state_of_stamp(rules.StampState(**{**values, **changes}), today)

    assert state() == "active"
    assert state(stamps=10) == "complete"
    assert state(stamps=10, used=True) == "redeemed"
    assert state(end=date(2026, 6, 14)) == "expired"
    assert state(end=date(2026, 6, 14), used=True) == "expired"
    assert state(active=False, used=True) == "inactive"
    assert state(strt=date(2026, 6, 16)) == "inactive"


@pytest.mark.slow  # PostgreSQL's own: not in `make test-fast`'s SQLite-only loop
async def test_postgresql_finds_a_fragment_through_the_trigram_index(postgresql_url: str) -> None:
    """The searched text is the very expression migration 0007 indexes: with
    sequential scans discouraged, PostgreSQL's plan uses ix_stamp_search
    (SQLite has no such index and scans)."""
    database_url = postgresql_url
    query = select(stamp.c.stamp_idx).where(
        search.searched_text().like(search.like_pattern("minji"), escape="\\")
    )
    database = Database(database_url, pool_size=1)
    try:
        async with database.write() as conn:
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            compiled = query.compile(conn.sync_connection, compile_kwargs={"literal_binds": True})
            plan = (await conn.execute(text(f"EXPLAIN {compiled}"))).scalars().all()
    finally:
        await database.dispose()
    assert any("ix_stamp_search" in line for line in plan), plan
