"""A change whose outbox insert fails (a full disk, say) changes nothing:
no count, no ledger row, no message, no Idempotency-Key kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.conftest import Api
from tests.webhooks.conftest import RECEIVER, Hooks


@asynccontextmanager
async def failing_outbox(db: Any) -> AsyncIterator[None]:
    """Make every outbox INSERT fail inside the database (a trigger), as a full
    disk would: the failure comes after the stamp change and the ledger row."""
    if db.is_sqlite:
        install = [
            "CREATE TRIGGER test_outbox_fails BEFORE INSERT ON webhook_message "
            "BEGIN SELECT RAISE(ABORT, 'the disk is full'); END"
        ]
        remove = ["DROP TRIGGER test_outbox_fails"]
    else:
        install = [
            "CREATE FUNCTION test_outbox_fails() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'the disk is full'; END $$",
            "CREATE TRIGGER test_outbox_fails BEFORE INSERT ON webhook_message "
            "FOR EACH ROW EXECUTE FUNCTION test_outbox_fails()",
        ]
        remove = [
            "DROP TRIGGER test_outbox_fails ON webhook_message",
            "DROP FUNCTION test_outbox_fails()",
        ]
    async with db.write() as conn:
        for statement in install:
            await conn.exec_driver_sql(statement)
    try:
        yield
    finally:
        async with db.write() as conn:
            for statement in remove:
                await conn.exec_driver_sql(statement)


@pytest.mark.parametrize("verb", ["add", "remove"])
async def test_a_write_whose_outbox_insert_fails_changes_nothing_and_keeps_no_key(
    app: Any, api: Api, hooks: Hooks, verb: str
) -> None:
    webhook_idx, _ = await hooks.create(RECEIVER)
    stamp_idx = await api.stamp()
    await api.add(stamp_idx)
    before = await hooks.log(webhook_idx)
    history = await api.ok("GET", "history", params={"stampIdx": stamp_idx})
    keyed = {"Idempotency-Key": f"outbox-fails-{verb}-{stamp_idx}"}

    async with failing_outbox(app.state.runtime.db):
        response = await api.call("PUT", verb, json={"stampIdx": stamp_idx}, headers=keyed)

    assert response.status_code == 500 and response.json()["code"] == 1901
    assert "disk" not in response.text
    assert await hooks.log(webhook_idx) == before
    assert await api.count(stamp_idx) == 1
    assert await api.ok("GET", "history", params={"stampIdx": stamp_idx}) == history
    # The key was not kept either: once the fault is gone, the retry writes once.
    retried = await api.call("PUT", verb, json={"stampIdx": stamp_idx}, headers=keyed)
    assert retried.json()["code"] == 0 and "Idempotent-Replayed" not in retried.headers
    assert await api.count(stamp_idx) == (2 if verb == "add" else 0)
    assert len(await hooks.log(webhook_idx)) == len(before) + 1
