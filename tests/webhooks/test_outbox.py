"""The outbox: every accepted change queues its events in its own transaction,
and a refused or failed change queues nothing."""

from __future__ import annotations

from typing import Any

import pytest

from stampbook.kit.clock import FrozenClock
from stampbook.webhooks import outbox
from stampbook.webhooks.schemas import EventType
from tests.conftest import Api
from tests.webhooks.conftest import Hooks

RECEIVER = "http://127.0.0.1:9/never-called"
STAMP_VIEW_FIELDS = [
    "stampIdx",
    "domain",
    "cardIdx",
    "cardNm",
    "cardTtl",
    "stamps",
    "maxStamps",
    "stampUrl",
    "url",
    "strtYmd",
    "endYmd",
    "onsiteYn",
    "onsitePwd",
    "memo",
    "activeYn",
    "userId",
    "userNm",
    "userPhnno",
    "userEml",
    "userEtc1",
    "userEtc2",
    "stampImgUrl",
    "regYmdt",
    "payloadVersion",
]


def kinds(log: list[dict[str, Any]]) -> list[str]:
    return [message["eventType"] for message in log]


def test_the_wire_event_names_are_the_outbox_event_types() -> None:
    from typing import get_args

    assert set(get_args(EventType)) == set(outbox.EVENT_TYPES)


async def test_every_verb_queues_its_event_with_explicit_counts(api: Api, hooks: Hooks) -> None:
    webhook_idx, _ = await hooks.create(RECEIVER)
    card_idx = await api.card(maxStamps=2)
    stamp_idx = await api.stamp(card_idx)

    await api.add(stamp_idx)
    await api.ok("PUT", "remove", json={"stampIdx": stamp_idx})
    await api.add(stamp_idx)
    await api.add(stamp_idx)  # fills the card
    await api.ok("PUT", "redeem", json={"stampIdx": stamp_idx})
    await api.ok("PUT", "update", json={"stampIdx": stamp_idx, "memo": "regular"})
    ledger = [event["eventIdx"] for event in reversed(await api.history(stamp_idx))]
    await api.ok("DELETE", "delete", params={"stampIdx": stamp_idx})

    log = await hooks.log(webhook_idx)
    assert kinds(log) == [
        "stamp.created",
        "stamp.added",
        "stamp.removed",
        "stamp.added",
        "stamp.added",
        "stamp.completed",
        "stamp.used",
        "stamp.updated",
        "stamp.deleted",
    ]
    counts = [
        (m["payload"]["data"]["stampsBefore"], m["payload"]["data"]["stampsAfter"]) for m in log
    ]
    assert counts == [(0, 0), (0, 1), (1, 0), (0, 1), (1, 2), (1, 2), (2, 2), (2, 2), (2, 2)]
    assert all(m["status"] == "pending" and m["attempts"] == [] for m in log)
    assert len({m["msgId"] for m in log}) == len(log)

    completed = log[5]["payload"]
    assert list(completed) == ["type", "timestamp", "data"]
    assert completed["type"] == "stamp.completed"
    data = completed["data"]
    assert list(data) == [*STAMP_VIEW_FIELDS, "stampsBefore", "stampsAfter", "source", "eventIdx"]
    assert data["stampIdx"] == stamp_idx and data["stamps"] == data["maxStamps"] == 2
    assert data["source"] == "API"
    # eventIdx names the ledger row; stamp.completed shares the row of the add
    # that filled the card, and a deletion (which takes the ledger with it) has none.
    event_idxs = [m["payload"]["data"]["eventIdx"] for m in log]
    assert event_idxs[:5] + event_idxs[6:8] == ledger
    assert event_idxs[5] == event_idxs[4]
    assert event_idxs[8] is None


async def test_the_reward_marked_used_by_update_is_a_use(api: Api, hooks: Hooks) -> None:
    webhook_idx, _ = await hooks.create(RECEIVER, events=["stamp.used", "stamp.updated"])
    stamp_idx = await api.stamp()

    await api.ok("PUT", "update", json={"stampIdx": stamp_idx, "useYn": "Y"})

    assert kinds(await hooks.log(webhook_idx)) == ["stamp.updated", "stamp.used"]


async def test_an_endpoint_receives_only_its_card_and_its_event_types(
    api: Api, hooks: Hooks
) -> None:
    coffee, tea = await api.card(), await api.card()
    only_tea, _ = await hooks.create(RECEIVER, cardIdx=tea)
    only_adds, _ = await hooks.create(RECEIVER, events=["stamp.added"])
    everything, _ = await hooks.create(RECEIVER)

    coffee_stamp, tea_stamp = await api.stamp(coffee), await api.stamp(tea)
    await api.add(coffee_stamp)
    await api.add(tea_stamp)

    tea_log = await hooks.log(only_tea)
    assert kinds(tea_log) == ["stamp.created", "stamp.added"]
    assert {m["stampIdx"] for m in tea_log} == {tea_stamp}
    assert kinds(await hooks.log(only_adds)) == ["stamp.added", "stamp.added"]
    all_log = await hooks.log(everything)
    assert len(all_log) == 4
    # The same event reaches each endpoint as its own message with the same body.
    assert {m["msgId"] for m in all_log}.isdisjoint({m["msgId"] for m in tea_log})
    assert all_log[-1]["payload"] == tea_log[-1]["payload"]


async def test_an_inactive_endpoint_queues_nothing(api: Api, hooks: Hooks) -> None:
    webhook_idx, _ = await hooks.create(RECEIVER)
    await api.ok("PUT", "webhook/update", json={"webhookIdx": webhook_idx, "activeYn": "N"})

    await api.stamp()

    assert await hooks.log(webhook_idx) == []


async def test_another_accounts_changes_never_reach_this_endpoint(
    api: Api, other_api: Api, hooks: Hooks
) -> None:
    webhook_idx, _ = await hooks.create(RECEIVER)

    await other_api.stamp()

    assert await hooks.log(webhook_idx) == []


async def test_a_refused_change_queues_nothing(api: Api, hooks: Hooks) -> None:
    webhook_idx, _ = await hooks.create(RECEIVER)
    stamp_idx = await api.stamp(await api.card(maxStamps=1, onsiteYn="Y", onsitePwd="1234"))
    assert await api.add(stamp_idx) == 0
    before = len(await hooks.log(webhook_idx))

    assert await api.add(stamp_idx) == 2006
    assert await api.code("PUT", "update", json={"stampIdx": stamp_idx, "stamps": 5}) == 2006
    assert (
        await api.code("PUT", "redeem", json={"stampIdx": stamp_idx, "onsitePwd": "wrong"}) == 2009
    )
    assert await api.code("PUT", "remove", json={"stampIdx": 10**12}) == 2001

    assert len(await hooks.log(webhook_idx)) == before


async def test_a_write_that_fails_after_queueing_leaves_no_message(
    api: Api, hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    webhook_idx, _ = await hooks.create(RECEIVER)
    stamp_idx = await api.stamp()
    before = await hooks.log(webhook_idx)
    real_enqueue = outbox.enqueue

    async def enqueue_then_fail(*args: Any, **kwargs: Any) -> None:
        await real_enqueue(*args, **kwargs)
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(outbox, "enqueue", enqueue_then_fail)
    response = await api.call("PUT", "add", json={"stampIdx": stamp_idx})
    monkeypatch.undo()

    assert response.status_code == 500 and response.json()["code"] == 1901
    assert await hooks.log(webhook_idx) == before
    assert await api.count(stamp_idx) == 0


async def test_settled_messages_are_purged_after_the_retention_and_pending_ones_never(
    app: Any, api: Api, database_url: str, clock: FrozenClock
) -> None:
    from sqlalchemy import func, select, update

    from stampbook.app import housekeeping
    from stampbook.db.schema import webhook_message

    webhook = await api.ok("POST", "webhook/create", json={"url": "http://127.0.0.1:9/unused"})
    stamp_idx = await api.stamp()
    await api.add(stamp_idx)
    runtime = app.state.runtime

    async def statuses() -> list[str]:
        async with runtime.db.read() as conn:
            rows = await conn.execute(
                select(webhook_message.c.status)
                .where(webhook_message.c.webhook_idx == webhook["webhookIdx"])
                .order_by(webhook_message.c.message_idx)
            )
            return [row.status for row in rows]

    async with runtime.db.write() as conn:
        first = (
            await conn.execute(
                select(func.min(webhook_message.c.message_idx)).where(
                    webhook_message.c.webhook_idx == webhook["webhookIdx"]
                )
            )
        ).scalar_one()
        await conn.execute(
            update(webhook_message)
            .where(webhook_message.c.message_idx == first)
            .values(status="delivered")
        )
    assert await statuses() == ["delivered", "pending"]

    clock.advance(days=29)
    await housekeeping(runtime)
    assert await statuses() == ["delivered", "pending"]
    clock.advance(days=2)
    await housekeeping(runtime)
    assert await statuses() == ["pending"]
    await api.ok("DELETE", "webhook/delete", params={"webhookIdx": webhook["webhookIdx"]})
