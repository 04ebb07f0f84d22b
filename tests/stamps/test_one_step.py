"""The one-step path and the rules: an accepted add or remove is done whole in
one step (one statement on PostgreSQL), and the rules in ``stamps/rules.py``
accept exactly what the conditional UPDATE (the one rule in SQL) matches."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import insert

from stampbook.db.schema import card, stamp
from stampbook.kit.context import CallContext, zone_for
from stampbook.kit.db import Database
from stampbook.stamps import hot_path, repository, rules, service
from stampbook.stamps.views import RECEIVER_COLUMNS, RENDERED_COLUMNS, render_stamp
from tests.conftest import Api, new_key


async def test_an_accepted_add_and_remove_take_the_one_step_path(api: Api) -> None:
    stamp_idx = await api.stamp(await api.card(maxStamps=2))
    before = dict(service.ONE_STEP)

    def taken(action: str) -> int:
        return service.ONE_STEP[action] - before.get(action, 0)

    assert await api.add(stamp_idx) == 0
    assert await api.add(stamp_idx, headers={"Idempotency-Key": f"one-step-{stamp_idx}"}) == 0
    assert taken(repository.ACTION_ADD) == 2
    assert await api.code("PUT", "remove", json={"stampIdx": stamp_idx}) == 0
    assert taken(repository.ACTION_REMOVE) == 1

    # Refusals and replays are the general path's: they never count as the one step.
    assert await api.add(stamp_idx, headers={"Idempotency-Key": f"one-step-{stamp_idx}"}) == 0
    assert await api.add(stamp_idx) == 0
    assert await api.add(stamp_idx) == 2006
    assert (taken(repository.ACTION_ADD), taken(repository.ACTION_REMOVE)) == (3, 1)
    assert await api.count(stamp_idx) == 2


@pytest.mark.parametrize(
    ("secrets", "columns"), [(True, RENDERED_COLUMNS), (False, RECEIVER_COLUMNS)]
)
def test_render_stamp_reads_exactly_the_rendered_columns(
    secrets: bool, columns: tuple[str, ...]
) -> None:
    # What the outbox records (RECEIVER_COLUMNS) is exactly what a receiver's
    # copy reads, so a payload rendered at delivery never lacks a column.
    read: list[str] = []

    class Recording(SimpleNamespace):
        def __getattribute__(self, name: str) -> Any:
            if not name.startswith("__"):
                read.append(name)
            return object.__getattribute__(self, name)

    now = datetime(2024, 5, 1, 12, 0)
    values: dict[str, Any] = {name: "x" for name in RENDERED_COLUMNS}
    values.update(strt_ymd=now.date(), end_ymd=now.date(), reg_ymdt=now)
    row = Recording(**values)
    render_stamp(row, public_url="https://x.test", zone=zone_for("UTC"), secrets=secrets)
    assert set(read) == set(columns)


# --- property: the rules and the conditional UPDATE agree --------------------

BASE = datetime(2025, 3, 30, 0, 0, tzinfo=UTC)
ZONES = ("UTC", "Asia/Seoul", "America/St_Johns")

states = st.fixed_dictionaries(
    {
        # weighted towards usable stamps, so that the verb's own rules
        # (full, too soon, the daily limit) are reached often
        "active": st.sampled_from([True] * 7 + [False]),
        "used": st.sampled_from([False] * 7 + [True]),
        "strt": st.sampled_from([-2, -1, 0, 0, 0, 1, 2]),  # days from today
        "end": st.sampled_from([-2, -1, 0, 0, 0, 1, 2]),
        "max_stamps": st.integers(1, 5),
        "stamps": st.integers(0, 3),
        "min_interval_sec": st.sampled_from([0, 0, 0, 1, 60, 3600]),
        # None, or milliseconds before now, around the interval's boundary
        "since_last_ms": st.one_of(st.none(), st.integers(-1500, 1500), st.integers(0, 4_000_000)),
        # the daily limit: the stamp's counter is of no day, yesterday or today
        "max_adds_per_day": st.sampled_from([0, 1, 2, 3]),
        "day": st.sampled_from([None, -1, 0, 0, 0]),
        "day_adds": st.integers(0, 3),
        # stamps added at once (1 for the API; a receipt code may be worth more)
        "count": st.sampled_from([1, 1, 1, 2, 3]),
    }
)
clocks = st.tuples(
    st.integers(0, 3 * 86_400_000),  # milliseconds after BASE
    st.sampled_from(ZONES),
)


async def _stamp_in(db: Database, account_idx: int, state: dict[str, Any], ctx: CallContext) -> int:
    today = ctx.today
    async with db.write() as conn:
        card_idx = (
            await conn.execute(
                insert(card)
                .values(
                    account_idx=account_idx,
                    card_nm="Property",
                    max_stamps=state["max_stamps"],
                    min_interval_sec=state["min_interval_sec"],
                    max_adds_per_day=state["max_adds_per_day"],
                    reg_ymdt=ctx.now_naive,
                )
                .returning(card.c.card_idx)
            )
        ).scalar_one()
        since = state["since_last_ms"]
        return int(
            (
                await conn.execute(
                    insert(stamp)
                    .values(
                        account_idx=account_idx,
                        card_idx=card_idx,
                        token=secrets.token_urlsafe(24),
                        stamps=min(state["stamps"], state["max_stamps"]),
                        max_stamps=state["max_stamps"],
                        strt_ymd=today + timedelta(days=state["strt"]),
                        end_ymd=today + timedelta(days=state["end"]),
                        active_yn="Y" if state["active"] else "N",
                        use_yn="Y" if state["used"] else "N",
                        user_id="property",
                        reg_ymdt=ctx.now_naive,
                        last_add_ms=None if since is None else ctx.now_ms - since,
                        day_ymd=None if state["day"] is None else today + timedelta(state["day"]),
                        day_adds=state["day_adds"],
                    )
                    .returning(stamp.c.stamp_idx)
                )
            ).scalar_one()
        )


async def _check(db: Database, account_idx: int, state: dict[str, Any], clock: Any) -> None:
    offset_ms, zone = clock
    ctx = CallContext(
        account_idx=account_idx,
        zone=zone_for(zone),
        now=BASE + timedelta(milliseconds=offset_ms),
        public_url="https://stamps.example.test",
    )
    count = state["count"]
    for change, delta, refusal in (
        (hot_path.ADD, count, lambda s: rules.add_refusal(s, ctx.today, ctx.now_ms, count)),
        (hot_path.REMOVE, -1, rules.remove_refusal),
    ):
        stamp_idx = await _stamp_in(db, account_idx, state, ctx)
        async with db.read() as conn:
            before = await repository.view(conn, account_idx=account_idx, stamp_idx=stamp_idx)
        expected = refusal(rules.state_of(before))
        done = await hot_path.try_change(
            db, ctx, change, stamp_idx=stamp_idx, fingerprint=None, delta=delta
        )
        async with db.read() as conn:
            after = await repository.view(conn, account_idx=account_idx, stamp_idx=stamp_idx)
        assert done == (expected is None), (change.action, state, ctx.now, zone, expected)
        assert after.stamps == before.stamps + (delta if done else 0)
        if change is hot_path.ADD and done:
            # The counter the daily limit reads is kept by the same UPDATE.
            assert after.day_ymd == ctx.today
            assert after.day_adds == rules.adds_on(rules.state_of(before), ctx.today) + count


def test_the_rules_accept_exactly_what_the_one_step_statement_matches(database_url: str) -> None:
    # One event loop serves every example (Hypothesis calls a plain function).
    with asyncio.Runner() as runner:
        db = Database(database_url, pool_size=2)
        try:
            _, account_idx = runner.run(new_key(database_url))

            @hypothesis_settings(max_examples=400, deadline=None, derandomize=True)
            @given(state=states, clock=clocks)
            def agree(state: dict[str, Any], clock: Any) -> None:
                runner.run(_check(db, account_idx, state, clock))

            agree()
        finally:
            runner.run(db.dispose())
