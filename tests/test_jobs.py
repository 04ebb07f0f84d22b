"""Background jobs (stampbook/jobs.py): when an API key was last used is
written down from what the workers saw, never by the request itself; a
round that meets a database outage says so in one line."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI

from stampbook import jobs
from stampbook.accounts import service as accounts
from stampbook.kit.clock import FrozenClock, utc_naive
from stampbook.kit.db import Database
from stampbook.kit.errors import Code, StampbookError
from stampbook.stats import rollups
from tests.conftest import Api


async def _last_used(app: FastAPI, account_idx: int) -> datetime | None:
    async with app.state.runtime.db.read() as conn:
        (key,) = await accounts.list_keys_of(conn, account_idx=account_idx)
    found: datetime | None = key["last_used_at"]
    return found


async def test_a_key_that_only_reads_shows_when_it_was_last_used(
    app: FastAPI, api: Api, clock: FrozenClock
) -> None:
    stamp_idx = await api.stamp()
    written = utc_naive(clock.now())
    await jobs.record_key_uses(app.state.runtime)
    assert await _last_used(app, api.account_idx) == written

    clock.advance(hours=2)
    await api.ok("GET", "validate", params={"stampIdx": stamp_idx})
    # Until a worker writes its uses down, the list knows only the ledger...
    assert await _last_used(app, api.account_idx) == written
    assert await jobs.record_key_uses(app.state.runtime) == 1
    # ...then it knows the read too.
    assert await _last_used(app, api.account_idx) == utc_naive(clock.now())
    assert await jobs.record_key_uses(app.state.runtime) == 0  # nothing new: no write


async def test_a_late_flush_of_an_older_use_never_moves_last_used_back(
    app: FastAPI, api: Api, clock: FrozenClock
) -> None:
    await api.card()
    newest = utc_naive(clock.now())
    await jobs.record_key_uses(app.state.runtime)
    # Another worker that saw the key an hour earlier writes down after this one.
    runtime = app.state.runtime
    (key_idx,) = await _key_indexes(app, api.account_idx)
    runtime.key_uses[key_idx] = clock.now() - timedelta(hours=1)
    await jobs.record_key_uses(runtime)
    assert await _last_used(app, api.account_idx) == newest


async def _key_indexes(app: FastAPI, account_idx: int) -> list[int]:
    async with app.state.runtime.db.read() as conn:
        return [
            int(k["key_idx"]) for k in await accounts.list_keys_of(conn, account_idx=account_idx)
        ]


@pytest.mark.parametrize(
    ("failure", "traceback"),
    [(StampbookError(Code.SERVICE_UNAVAILABLE), False), (RuntimeError("a defect"), True)],
)
async def test_a_round_that_meets_a_database_outage_logs_one_line_and_a_defect_its_traceback(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failure: Exception,
    traceback: bool,
) -> None:
    # An outage is reported once by kit/db_faults.py and answered 503 meanwhile:
    # a job's traceback every round would only bury it.
    stop = asyncio.Event()

    async def failing(self: rollups.Pace, conn: object, now: float) -> bool:
        stop.set()
        raise failure

    monkeypatch.setattr(rollups.Pace, "allows_fold", failing)
    database = Database(database_url, pool_size=1)
    try:
        with caplog.at_level(logging.WARNING, logger="stampbook"):
            await jobs.fold_until(database, stop)
    finally:
        await database.dispose()
    (record,) = [r for r in caplog.records if "rollups" in r.getMessage()]
    assert (record.exc_info is not None) is traceback
