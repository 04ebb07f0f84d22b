"""The delivered bytes: what a receiver gets for an add, a completion and a
remove, rendered at delivery by the API's own renderer; and a message queued
by an older version (a payload rendered when queued) delivered as stored."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import insert

from stampbook.db.schema import webhook_message
from stampbook.kit.clock import FrozenClock, utc_naive
from stampbook.kit.context import zone_for
from stampbook.webhooks.dispatcher import Dispatcher
from tests.conftest import Api
from tests.webhooks.conftest import Hooks, Receiver
from tests.webhooks.test_outbox import RECEIVER_VIEW_FIELDS, set_timezone

SEOUL = "Asia/Seoul"


async def test_an_add_a_completion_and_a_remove_deliver_the_same_shape(
    app: Any, api: Api, hooks: Hooks, receiver: Receiver, dispatcher: Dispatcher, clock: FrozenClock
) -> None:
    await set_timezone(app, api, SEOUL)
    await hooks.listen(receiver, events=["stamp.added", "stamp.completed", "stamp.removed"])
    card_idx = await api.card(maxStamps=1, onsiteYn="Y", onsitePwd="1234")
    stamp_idx = await api.stamp(card_idx, memo='Zoë "regular" 김민지')
    created_at = clock.now()
    clock.advance(minutes=5)
    assert await api.add(stamp_idx) == 0
    assert await api.code("PUT", "remove", json={"stampIdx": stamp_idx}) == 0

    await dispatcher.drain()

    requests = receiver.requests()
    assert all(request.signature_ok for request in requests)
    bodies = [request.body for request in requests]
    # orjson's compact form, keys in the contract's order.
    assert all(body == orjson.dumps(orjson.loads(body)) for body in bodies)
    payloads = [orjson.loads(body) for body in bodies]
    assert [p["type"] for p in payloads] == ["stamp.added", "stamp.completed", "stamp.removed"]
    seoul = zone_for(SEOUL)
    for payload, counts in zip(payloads, [(0, 1), (0, 1), (1, 0)], strict=True):
        assert list(payload) == ["type", "timestamp", "data"]
        # The change's time and the stamp's, in the account's zone.
        assert payload["timestamp"] == clock.now().astimezone(seoul).strftime("%Y-%m-%d %H:%M:%S")
        data = payload["data"]
        assert list(data) == [
            *RECEIVER_VIEW_FIELDS,
            "stampsBefore",
            "stampsAfter",
            "source",
            "eventIdx",
        ]
        assert data["regYmdt"] == created_at.astimezone(seoul).strftime("%Y-%m-%d %H:%M:%S")
        assert data["strtYmd"] == (api.today - timedelta(days=1)).isoformat()
        assert data["stampIdx"] == stamp_idx and data["cardIdx"] == card_idx
        assert data["domain"] == "https://stamps.example.test"
        assert data["stampUrl"].startswith("https://stamps.example.test/s/")
        assert data["stampImgUrl"] == "https://stamps.example.test/static/stamp/default.svg"
        assert data["memo"] == 'Zoë "regular" 김민지' and data["onsiteYn"] == "Y"
        assert (data["stampsBefore"], data["stampsAfter"]) == counts
        assert data["source"] == "API" and isinstance(data["eventIdx"], int)
        assert data["payloadVersion"] == "v1"
        assert b"1234" not in bodies[0]  # the staff password never leaves the API


async def test_a_message_queued_by_an_older_version_is_delivered_as_stored(
    app: Any, api: Api, hooks: Hooks, receiver: Receiver, dispatcher: Dispatcher, clock: FrozenClock
) -> None:
    webhook_idx = await hooks.listen(receiver)
    # A payload as an older version stored it: rendered when queued, with
    # PostgreSQL's json_build_object spacing.
    stored = (
        '{"type" : "stamp.added", "timestamp" : "2024-05-01 21:00:00", '
        '"data" : {"stampIdx" : 7, "onsitePwd" : null, "stampsAfter" : 1}}'
    )
    now = utc_naive(clock.now())
    async with app.state.runtime.db.write() as conn:
        await conn.execute(
            insert(webhook_message).values(
                msg_id="msg_from_an_older_version_1",
                webhook_idx=webhook_idx,
                account_idx=api.account_idx,
                stamp_idx=None,
                event_type="stamp.added",
                payload=stored,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )

    await dispatcher.drain()

    (request,) = receiver.requests()
    assert request.body == stored.encode()
    assert request.signature_ok and request.msg_id == "msg_from_an_older_version_1"
    (message,) = await hooks.log(webhook_idx)
    assert message["status"] == "delivered" and message["payload"] == orjson.loads(stored)
