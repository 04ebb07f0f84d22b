"""The statistics' rollups change no number: whatever part of the ledger the
job has folded (none, some, all), and whatever happened after (more rows, a
stamp deleted, a userId or a card's maximum changed, two folding workers at
once, a transaction committing a lower eventIdx late), GET /stats answers
exactly what it answers read all live (the rollups emptied, watermark 0)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from stampbook import jobs
from stampbook.config import Settings
from stampbook.db.rollup_schema import stats_fold
from stampbook.db.schema import stamp_event
from stampbook.kit.db import Database
from stampbook.stats import rollup_repository as rollup_repo
from stampbook.stats import rollups
from tests.conftest import Api
from tests.stats.ledger import Ledger
from tests.stats.test_stats import DAYS, seoul

__all__ = ["seoul"]  # the fixture, shared with test_stats

FIRST = datetime(2026, 3, 1)
ZONE = "Asia/Kathmandu"  # UTC+5:45: local midnight is 18:15 UTC, mid-hour
RANGES = [("2026-03-01", "2026-03-05"), ("2026-03-02", "2026-03-02"), ("2026-03-03", "2026-03-04")]


async def fold(database_url: str, *, rows: int = rollups.FOLD_BATCH_ROWS,
               batches: int | None = None) -> None:  # fmt: skip
    """Run the job's fold until nothing is left (or ``batches`` batches folded)."""
    database = Database(database_url, pool_size=1)
    try:
        done = 0
        while batches is None or done < batches:
            async with database.write() as conn:
                moved = await rollups.fold_batch(conn, rows=rows)
            if moved is None:
                return
            done += 1 if moved else 0
    finally:
        await database.dispose()


async def watermark(database_url: str) -> int:
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            return int((await conn.execute(select(stats_fold.c.folded_idx))).scalar_one())
    finally:
        await database.dispose()


async def unfold(database_url: str) -> None:
    """Empty the rollups and put the watermark back to 0: everything live."""
    database = Database(database_url, pool_size=1)
    try:
        async with database.write() as conn:
            await rollup_repo.unfold(conn)
    finally:
        await database.dispose()


@pytest.fixture(autouse=True)
async def all_live_after(database_url: str) -> AsyncIterator[None]:
    """Each test leaves the rollups as it found them: empty."""
    yield
    await unfold(database_url)


async def answers(api: Api, cards: list[int]) -> list[dict[str, Any]]:
    """Every range, for the whole account and for each card."""
    found = []
    for first, last in RANGES:
        for card_idx in [None, *cards]:
            params: dict[str, Any] = {"from": first, "to": last}
            if card_idx is not None:
                params["cardIdx"] = card_idx
            found.append(dict(await api.ok("GET", "stats", params=params)))
    return found


async def live_answers(database_url: str, api: Api, cards: list[int]) -> list[dict[str, Any]]:
    """The answers read all live; the rollups are left empty."""
    await unfold(database_url)
    return await answers(api, cards)


async def random_ledger(database_url: str, api: Api, seed: int) -> tuple[list[int], list[int]]:
    """Two cards and 14 stamps of five customers, each created and then added
    to, taken from, redeemed and moved between the cards at random moments
    over four days; returns the cards and the stamps."""
    chance = random.Random(seed)
    ledger = Ledger(database_url, api.account_idx)
    await ledger.set_timezone(ZONE)
    maxima = {await ledger.card(3, "A"): 3, await ledger.card(4, "B"): 4}
    cards = list(maxima)
    stamps = []
    for n in range(14):
        at = FIRST + timedelta(minutes=chance.randrange(4 * 24 * 60))
        on, count, used, events = chance.choice(cards), 0, "N", []
        first_card = on
        for _ in range(chance.randrange(9)):
            at += timedelta(minutes=chance.randrange(1, 600))
            move = chance.random()
            if move < 0.55 and count < maxima[on]:
                events.append((on, "ADD", count, count + 1, at))
                count += 1
            elif move < 0.7 and count > 0:
                events.append((on, "REMOVE", count, count - 1, at))
                count -= 1
            elif move < 0.8 and used == "N":
                events.append((on, "USE", count, count, at))
                used = "Y"
            else:
                other = cards[1 - cards.index(on)]
                count = min(count, maxima[other])
                events.append((other, "UPDATE", count, count, at))
                on = other
        created = at - timedelta(days=1) if not events else events[0][4] - timedelta(minutes=1)
        stamp_idx = await ledger.stamp(
            first_card,
            user_id=f"u{n % 5}",
            created=created,
            max_stamps=maxima[on],
            moved_to=on if on != first_card else None,
            stamps=count,
            use_yn=used,
            active_yn="N" if n % 7 == 6 else "Y",
        )
        for card_idx, action, before, after, moment in events:
            await ledger.event(stamp_idx, card_idx, action, before, after, moment)
        stamps.append(stamp_idx)
    await ledger.close()
    return cards, stamps


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_folding_none_some_or_all_of_a_random_ledger_changes_no_answer(
    database_url: str, api: Api, other_api: Api, seed: int
) -> None:
    await other_api.add(await other_api.stamp())  # another account's rows get folded too
    cards, _ = await random_ledger(database_url, api, seed)
    live = await answers(api, cards)
    assert sum(answer["totals"]["stampsAdded"] for answer in live) > 0  # a ledger worth checking
    await fold(database_url, rows=7, batches=1)
    assert await watermark(database_url) > 0
    assert await answers(api, cards) == live
    await fold(database_url, rows=5, batches=3)
    assert await answers(api, cards) == live
    await fold(database_url)
    assert await answers(api, cards) == live
    highest = await watermark(database_url)
    await fold(database_url)  # nothing new: folding again changes nothing
    assert await watermark(database_url) == highest
    assert await answers(api, cards) == live


@pytest.mark.parametrize("seed", [4, 5])
async def test_deletions_new_userids_new_maxima_and_new_rows_after_a_fold_stay_exact(
    database_url: str, api: Api, seed: int
) -> None:
    cards, stamps = await random_ledger(database_url, api, seed)
    await fold(database_url)
    await api.ok("DELETE", "delete", params={"stampIdx": stamps[0]})
    await api.ok("PUT", "update", json={"stampIdx": stamps[1], "userId": "someone-new"})
    await api.ok("PUT", "update", json={"stampIdx": stamps[2], "userId": "u4"})
    await api.ok("PUT", "card/update", json={"cardIdx": cards[0], "maxStamps": 4})
    ledger = Ledger(database_url, api.account_idx)
    await ledger.adds(
        stamps[3], cards[1], 0, datetime(2026, 3, 3, 18, 14), datetime(2026, 3, 3, 18, 15)
    )
    await ledger.close()
    folded = await answers(api, cards)  # the rollups corrected, the new rows live
    live = await live_answers(database_url, api, cards)
    assert folded == live
    await fold(database_url)
    await api.ok("PUT", "card/update", json={"cardIdx": cards[0], "maxStamps": 5})
    await api.ok("DELETE", "delete", params={"stampIdx": stamps[4]})
    folded = await answers(api, cards)
    assert folded == await live_answers(database_url, api, cards)


async def test_the_seoul_ledger_answers_the_same_folded(
    database_url: str, api: Api, seoul: dict[str, int]
) -> None:
    cards = [seoul["a"], seoul["b"]]
    queries = [{"from": DAYS[0], "to": DAYS[-1]}, {"from": DAYS[1], "to": DAYS[1]}]
    params = [
        {**query, **card} for query in queries for card in [{}, *({"cardIdx": c} for c in cards)]
    ]
    live = [await api.ok("GET", "stats", params=p) for p in params]
    await fold(database_url, rows=3, batches=2)
    assert [await api.ok("GET", "stats", params=p) for p in params] == live
    await fold(database_url)
    assert [await api.ok("GET", "stats", params=p) for p in params] == live


async def test_two_workers_folding_at_once_fold_each_row_once(database_url: str, api: Api) -> None:
    cards, _ = await random_ledger(database_url, api, 6)
    live = await answers(api, cards)
    await asyncio.gather(*(fold(database_url, rows=3) for _ in range(2)))
    assert await answers(api, cards) == live
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            highest = (
                await conn.execute(
                    select(stamp_event.c.event_idx)
                    .order_by(stamp_event.c.event_idx.desc())
                    .limit(1)
                )
            ).scalar_one()
    finally:
        await database.dispose()
    assert await watermark(database_url) == highest


async def test_a_row_committed_late_with_a_lower_eventidx_is_still_folded(
    database_url: str, api: Api
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite commits its writers one at a time, in eventIdx order")
    card_idx = await api.card(maxStamps=3)
    stamp_idx = await api.stamp(card_idx)
    await api.add(stamp_idx)
    slow = Database(database_url, pool_size=1)
    row = {"account_idx": api.account_idx, "stamp_idx": stamp_idx, "card_idx": card_idx,
           "action": "ADD", "stamps_before": 1, "stamps_after": 2, "source": "API",
           "reg_ymdt": datetime.now(UTC).replace(microsecond=0, tzinfo=None)}  # fmt: skip
    try:
        async with slow.write() as conn:
            late = (
                await conn.execute(
                    insert(stamp_event).values(row).returning(stamp_event.c.event_idx)
                )
            ).scalar_one()
            await api.add(stamp_idx)  # commits a higher eventIdx first
            await fold(database_url)
            assert await watermark(database_url) < late
    finally:
        await slow.dispose()
    today = api.today.isoformat()
    live = await api.ok("GET", "stats", params={"from": today, "to": today})
    await fold(database_url)
    assert await watermark(database_url) > late
    assert await api.ok("GET", "stats", params={"from": today, "to": today}) == live
    assert live["totals"]["stampsAdded"] == 3


async def test_serve_runs_the_fold_and_it_folds_the_whole_ledger(
    database_url: str, api: Api, settings: Settings
) -> None:
    assert jobs.fold_forever in jobs.background_jobs(settings)
    await api.add(await api.stamp())
    database = Database(database_url, pool_size=1)
    try:
        moved = await jobs.fold_rollups(database)
        moved += await jobs.fold_rollups(database)  # PostgreSQL: seen, then settled
        assert moved == await watermark(database_url) > 0
        assert await jobs.fold_rollups(database) == 0  # nothing new
    finally:
        await database.dispose()


async def test_one_fold_of_the_job_ends_while_adds_keep_coming(
    database_url: str, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each batch the job folds is followed by another add, as under load: the
    # job must end its round on a short batch, not chase every new row (it
    # did, at 10 ms of CPU per add on SQLite).
    await api.add(await api.stamp())
    await fold(database_url)  # the suite's earlier ledger too: only new rows remain
    await api.add(await api.stamp())
    folded = rollups.fold_batch
    batches = 0

    async def fold_then_add(conn: Any, *, rows: int) -> int | None:
        nonlocal batches
        batches += 1
        assert batches < 20, "the job chased the adds"
        moved = await folded(conn, rows=rows)
        # A new ledger row, written in the fold's own transaction (SQLite's
        # one writer would keep an add out until it commits).
        newest = (
            await conn.execute(select(stamp_event).order_by(stamp_event.c.event_idx.desc()))
        ).first()
        copied = {k: v for k, v in newest._mapping.items() if k != "event_idx"}
        await conn.execute(insert(stamp_event).values(copied))
        return moved

    monkeypatch.setattr(rollups, "fold_batch", fold_then_add)
    database = Database(database_url, pool_size=1)
    try:
        await jobs.fold_rollups(database, rows=10)
        assert batches == 1
    finally:
        await database.dispose()


async def test_on_sqlite_a_fold_catching_up_lets_the_writer_go_between_batches(
    database_url: str, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fold(database_url)
    for _ in range(7):
        await api.stamp()  # a CREATE row each: three full batches of 2, then 1
    pauses: list[float] = []
    real_sleep = asyncio.sleep

    async def noted_sleep(seconds: float) -> None:
        pauses.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(jobs.asyncio, "sleep", noted_sleep)
    database = Database(database_url, pool_size=1)
    try:
        await jobs.fold_rollups(database, rows=2)
        await jobs.fold_rollups(database, rows=2)  # PostgreSQL: seen, then settled
    finally:
        await database.dispose()
    if database_url.startswith("sqlite"):
        assert len(pauses) == 3 and min(pauses) >= jobs.FOLD_YIELD_SECONDS
    else:  # row locks: no one writer to let go
        assert pauses == []


async def test_the_job_yields_to_a_rush_until_the_tail_reaches_its_cap(
    database_url: str, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Folding competes with the adds for the CPU (and SQLite's one writer):
    # while the ledger grows fast the job waits, but never past the cap.
    monkeypatch.setattr(rollups, "YIELD_ABOVE_ROWS_PER_SECOND", 2.0)
    stamp_idx = await api.stamp()
    await fold(database_url)
    database = Database(database_url, pool_size=1)
    pace = rollups.Pace()

    async def allows(now: float) -> bool:
        async with database.read() as conn:
            return await pace.allows_fold(conn, now)

    try:
        assert await allows(100.0)  # the first round: nothing known, fold
        for _ in range(5):
            await api.add(stamp_idx)
        assert not await allows(101.0)  # 5 rows in 1 s: a rush, wait
        assert await allows(111.0)  # no new row in 10 s: fold
        for _ in range(3):
            await api.add(stamp_idx)
        monkeypatch.setattr(rollups, "TAIL_CAP_ROWS", 3)
        assert await allows(112.0)  # a rush, but the tail is at the cap: fold
    finally:
        await database.dispose()


async def test_a_deleted_cards_folded_rows_count_as_the_live_ledger_counts_them(
    database_url: str, api: Api
) -> None:
    # The stamp was issued and filled on A, then moved to B: A has no stamp
    # left and can be deleted, while ledger rows still name it.
    ledger = Ledger(database_url, api.account_idx)
    await ledger.set_timezone(ZONE)
    a, b = await ledger.card(2, "A"), await ledger.card(3, "B")
    moved = await ledger.stamp(a, user_id="u1", created=FIRST, max_stamps=3, moved_to=b, stamps=3)
    await ledger.adds(moved, a, 0, FIRST + timedelta(hours=1), FIRST + timedelta(hours=2))
    await ledger.event(moved, b, "UPDATE", 2, 2, FIRST + timedelta(hours=3))
    await ledger.adds(moved, b, 2, FIRST + timedelta(days=1))
    await ledger.close()
    await fold(database_url)
    await api.ok("DELETE", "card/delete", params={"cardIdx": a})
    folded = await answers(api, [b])
    assert folded == await live_answers(database_url, api, [b])
    assert folded[0]["totals"]["stampsAdded"] == 1  # A's two adds went with A
    assert folded[0]["totals"]["activeCustomers"] == 1
