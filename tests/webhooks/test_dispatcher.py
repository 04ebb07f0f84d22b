"""Delivery to a real receiver: signed, retried on schedule, recorded, in order.

The dispatcher runs on the app's frozen clock, so hours of retries take no
time: a test moves the clock and runs a dispatch round.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import orjson
import pytest
from standardwebhooks import Webhook

from stampbook.kit.clock import FrozenClock
from stampbook.webhooks.dispatcher import EXCERPT_CHARS, Dispatcher
from stampbook.webhooks.schedule import MAX_ATTEMPTS, RETRY_DELAYS, Verdict
from tests.conftest import Api
from tests.webhooks.conftest import (
    TEST_TIMEOUT_SECONDS,
    Answer,
    Hooks,
    Receiver,
    signature_matches,
)


async def test_an_event_arrives_signed_per_standard_webhooks(
    api: Api, hooks: Hooks, receiver: Receiver, dispatcher: Dispatcher, clock: FrozenClock
) -> None:
    webhook_idx, secret = await hooks.create(receiver.url)
    stamp_idx = await api.stamp()

    outcomes = await dispatcher.drain()

    assert [outcome.verdict for outcome in outcomes] == [Verdict.DELIVERED]
    (request,) = receiver.requests()
    # The library a receiver would use accepts it (the clock is at the real now).
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "stamp.created"
    assert payload["data"]["stampIdx"] == stamp_idx
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"].startswith("msg_")
    assert request.headers["webhook-timestamp"] == str(int(clock.now().timestamp()))
    assert request.headers["webhook-signature"].startswith("v1,")

    (message,) = await hooks.log(webhook_idx)
    assert message["msgId"] == request.msg_id
    assert message["status"] == "delivered"
    assert message["payload"] == payload
    (attempt,) = message["attempts"]
    assert attempt["statusCode"] == 200
    assert attempt["response"] == "ok"
    assert attempt["error"] is None
    assert attempt["latencyMs"] >= 0


async def test_a_500_is_retried_after_5_seconds_with_the_same_id_and_body(
    api: Api, hooks: Hooks, receiver: Receiver, dispatcher: Dispatcher, clock: FrozenClock
) -> None:
    webhook_idx = await hooks.listen(receiver)
    receiver.answer(Answer(500, body=b"boom"))
    await api.stamp()

    assert [o.verdict for o in await dispatcher.drain()] == [Verdict.RETRY]
    clock.advance(seconds=4)
    assert await dispatcher.drain() == []  # not due yet
    clock.advance(seconds=1)
    assert [o.verdict for o in await dispatcher.drain()] == [Verdict.DELIVERED]

    first, second = receiver.requests()
    assert first.msg_id == second.msg_id
    assert first.body == second.body
    assert first.signature_ok and second.signature_ok
    # Each attempt is signed at its own time.
    assert int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) == 5
    (message,) = await hooks.log(webhook_idx)
    assert [a["statusCode"] for a in message["attempts"]] == [500, 200]
    assert message["attempts"][0]["response"] == "boom"
    assert message["status"] == "delivered"


async def test_retries_follow_the_schedule_then_the_message_fails_and_can_be_replayed(
    api: Api, hooks: Hooks, receiver: Receiver, dispatcher: Dispatcher, clock: FrozenClock
) -> None:
    webhook_idx = await hooks.listen(receiver)
    receiver.default = Answer(503)
    await api.stamp()

    assert len(await dispatcher.drain()) == 1  # the immediate attempt
    for delay in RETRY_DELAYS:
        clock.advance(seconds=delay.total_seconds() - 1)
        assert await dispatcher.drain() == [], f"retried before {delay}"
        clock.advance(seconds=1)
        assert len(await dispatcher.drain()) == 1, f"not retried after {delay}"

    (message,) = await hooks.log(webhook_idx)
    assert message["status"] == "failed"
    assert len(message["attempts"]) == MAX_ATTEMPTS == 8
    clock.advance(hours=48)
    assert await dispatcher.drain() == []  # failed is final until replayed

    receiver.default = Answer(200)
    replayed = await api.ok(
        "POST", "webhook/replay", json={"webhookIdx": webhook_idx, "msgId": message["msgId"]}
    )
    assert replayed == {"replayed": 1}
    assert [o.verdict for o in await dispatcher.drain()] == [Verdict.DELIVERED]

    requests = receiver.requests()
    assert len(requests) == 9
    assert {r.msg_id for r in requests} == {message["msgId"]}
    assert {r.body for r in requests} == {requests[0].body}
    assert all(r.signature_ok for r in requests)
    (message,) = await hooks.log(webhook_idx)
    assert message["status"] == "delivered"


async def test_replay_without_a_message_sends_every_failed_one(
    api: Api, hooks: Hooks, receiver: Receiver, dispatcher: Dispatcher, clock: FrozenClock
) -> None:
    webhook_idx = await hooks.listen(receiver, events=["stamp.added"])
    receiver.default = Answer(500)
    first, second = await api.stamp(), await api.stamp()
    assert await api.add(first) == 0 and await api.add(second) == 0
    await dispatcher.drain()
    for delay in RETRY_DELAYS:
        clock.advance(seconds=delay.total_seconds())
        await dispatcher.drain()
    assert [m["status"] for m in await hooks.log(webhook_idx)] == ["failed", "failed"]

    receiver.default = Answer(200)
    assert await api.ok("POST", "webhook/replay", json={"webhookIdx": webhook_idx}) == {
        "replayed": 2
    }
    assert len(await dispatcher.drain()) == 2
    assert [m["status"] for m in await hooks.log(webhook_idx)] == ["delivered", "delivered"]
    assert await api.ok("POST", "webhook/replay", json={"webhookIdx": webhook_idx}) == {
        "replayed": 0
    }


async def test_a_receiver_that_sleeps_past_the_timeout_is_retried(
    api: Api, hooks: Hooks, receiver: Receiver, dispatcher: Dispatcher, clock: FrozenClock
) -> None:
    webhook_idx = await hooks.listen(receiver)
    receiver.answer(Answer(200, delay=TEST_TIMEOUT_SECONDS + 0.7))
    await api.stamp()

    (outcome,) = await dispatcher.drain()
    assert outcome.verdict is Verdict.RETRY
    assert outcome.response.status_code is None
    assert outcome.response.latency_ms < (TEST_TIMEOUT_SECONDS + 0.5) * 1000

    clock.advance(seconds=5)
    assert [o.verdict for o in await dispatcher.drain()] == [Verdict.DELIVERED]
    first, second = receiver.requests()
    assert first.msg_id == second.msg_id
    (message,) = await hooks.log(webhook_idx)
    timed_out, delivered = message["attempts"]
    assert timed_out["statusCode"] is None and "timeout" in timed_out["error"]
    assert delivered["statusCode"] == 200


async def test_a_refused_connection_is_recorded_and_retried(
    api: Api, hooks: Hooks, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    receiver.stop()  # nothing listens on its port any more
    webhook_idx, _ = await hooks.create(receiver.url)
    await api.stamp()

    (outcome,) = await dispatcher.drain()

    assert outcome.verdict is Verdict.RETRY
    (message,) = await hooks.log(webhook_idx)
    assert message["status"] == "pending"
    (attempt,) = message["attempts"]
    assert attempt["statusCode"] is None and attempt["error"]


async def test_410_gone_disables_the_endpoint(
    api: Api, hooks: Hooks, receiver: Receiver, dispatcher: Dispatcher, clock: FrozenClock
) -> None:
    webhook_idx = await hooks.listen(receiver)
    receiver.answer(Answer(410))
    stamp_idx = await api.stamp()
    await api.add(stamp_idx)  # a second message, queued behind the first

    assert [o.verdict for o in await dispatcher.drain()] == [Verdict.GONE]

    endpoint = await hooks.endpoint(webhook_idx)
    assert endpoint["activeYn"] == "N"
    assert "410" in endpoint["disabledReason"]
    created, added = await hooks.log(webhook_idx)
    assert created["status"] == "failed"
    assert added["status"] == "pending"  # held, not lost
    clock.advance(hours=1)
    assert await dispatcher.drain() == []
    await api.add(stamp_idx)  # while disabled, new events are not queued for it
    assert len(await hooks.log(webhook_idx)) == 2

    await api.ok("PUT", "webhook/update", json={"webhookIdx": webhook_idx, "activeYn": "Y"})
    assert (await hooks.endpoint(webhook_idx))["disabledReason"] is None
    assert [o.verdict for o in await dispatcher.drain()] == [Verdict.DELIVERED]
    assert [r.json["type"] for r in receiver.requests()] == ["stamp.created", "stamp.added"]


async def test_retry_after_on_429_is_honoured(
    api: Api, hooks: Hooks, receiver: Receiver, dispatcher: Dispatcher, clock: FrozenClock
) -> None:
    webhook_idx = await hooks.listen(receiver)
    receiver.answer(Answer(429, headers={"Retry-After": "120"}))
    await api.stamp()

    (outcome,) = await dispatcher.drain()
    assert outcome.next_attempt_at == clock.now() + timedelta(seconds=120)
    clock.advance(seconds=119)
    assert await dispatcher.drain() == []
    clock.advance(seconds=1)
    assert [o.verdict for o in await dispatcher.drain()] == [Verdict.DELIVERED]
    assert [a["statusCode"] for a in (await hooks.log(webhook_idx))[0]["attempts"]] == [429, 200]


async def test_redirects_are_not_followed(
    api: Api, hooks: Hooks, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    await hooks.listen(receiver)
    receiver.answer(Answer(307, headers={"Location": receiver.url + "/elsewhere"}))
    await api.stamp()

    (outcome,) = await dispatcher.drain()

    assert outcome.verdict is Verdict.RETRY
    assert [r.path for r in receiver.requests()] == ["/hooks"]


@pytest.mark.parametrize(
    ("body", "content_type", "kept"),
    [
        (b"x" * 5000, "text/plain", "x" * EXCERPT_CHARS),
        ("가" * 1000, "text/plain; charset=utf-8", "가" * EXCERPT_CHARS),
        ("bad\x1b[31m red\r\n\x07bell\u202eflip", "text/plain", "bad[31m red\nbellflip"),
        ("caf\xe9".encode("latin-1"), "text/plain; charset=iso-8859-1", "caf\xe9"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png", None),
        (b"\xff\xfe\xfa not utf-8", "application/octet-stream", None),
        (b"", "text/plain", None),
    ],
)
async def test_only_a_short_plain_text_excerpt_of_an_answer_is_kept(
    api: Api,
    hooks: Hooks,
    receiver: Receiver,
    dispatcher: Dispatcher,
    body: bytes | str,
    content_type: str,
    kept: str | None,
) -> None:
    raw = body.encode() if isinstance(body, str) else body
    webhook_idx = await hooks.listen(receiver)
    receiver.answer(Answer(500, headers={"content-type": content_type}, body=raw))
    await api.stamp()

    await dispatcher.drain()

    (attempt,) = (await hooks.log(webhook_idx))[0]["attempts"]
    assert attempt["response"] == kept


async def test_each_stamps_events_arrive_in_order_even_when_one_is_retried(
    api: Api, hooks: Hooks, receiver: Receiver, dispatcher: Dispatcher, clock: FrozenClock
) -> None:
    await hooks.listen(receiver)
    card_idx = await api.card(maxStamps=3)
    slow = await api.stamp(card_idx)  # its stamp.created will be refused once
    receiver.answer(Answer(500))
    await dispatcher.drain()
    fast = await api.stamp(card_idx)
    for _ in range(3):
        assert await api.add(slow) == 0
        assert await api.add(fast) == 0
    assert await api.code("PUT", "remove", json={"stampIdx": fast}) == 0

    await dispatcher.drain()
    # The retried stamp's later events wait for it; the other stamp's do not.
    arrived = {r.json["data"]["stampIdx"] for r in receiver.requests()[1:]}
    assert arrived == {fast}
    clock.advance(seconds=5)
    await dispatcher.drain()

    requests = receiver.requests()
    for stamp_idx in (slow, fast):
        delivered = [r for r in requests if r.json["data"]["stampIdx"] == stamp_idx]
        firsts = list(dict.fromkeys(r.msg_id for r in delivered))
        events = [next(r.json for r in delivered if r.msg_id == m) for m in firsts]
        kinds = [e["type"] for e in events]
        assert kinds[:4] == ["stamp.created", "stamp.added", "stamp.added", "stamp.added"]
        assert kinds[4] == "stamp.completed"
        counts = [e["data"]["stampsAfter"] for e in events]
        assert counts[:5] == [0, 1, 2, 3, 3]
    # One webhook-id per event, however often it was sent.
    assert len({r.msg_id for r in requests}) == len(requests) - 1
    assert all(r.signature_ok for r in requests)
    # Every body in the same compact form, whichever path queued the event.
    assert all(r.body == orjson.dumps(r.json) for r in requests)


async def test_a_deleted_endpoint_loses_its_queue_and_a_late_answer_is_harmless(
    api: Api, hooks: Hooks, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    webhook_idx = await hooks.listen(receiver)
    receiver.answer(Answer(200, delay=0.3))
    await api.stamp()

    delivering = asyncio.create_task(dispatcher.run_once())
    assert await asyncio.to_thread(receiver.arrived.wait, 5)
    await api.ok("DELETE", "webhook/delete", params={"webhookIdx": webhook_idx})
    (outcome,) = await delivering

    assert outcome.counted is False
    assert await api.code("GET", "webhook/deliveries", params={"webhookIdx": webhook_idx}) == 2201


async def test_a_rotated_secret_signs_beside_the_old_one_for_a_day(
    api: Api, hooks: Hooks, receiver: Receiver, dispatcher: Dispatcher, clock: FrozenClock
) -> None:
    webhook_idx, old = await hooks.create(receiver.url)
    rotated = await api.ok(
        "PUT", "webhook/update", json={"webhookIdx": webhook_idx, "rotateSecretYn": "Y"}
    )
    new = rotated["secret"]
    assert new != old and new.startswith("whsec_")
    stamp_idx = await api.stamp()
    await dispatcher.drain()
    clock.advance(hours=25)
    await api.add(stamp_idx)
    await dispatcher.drain()

    during, after = receiver.requests()
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert signature_matches([old], during.headers, during.body)
    assert signature_matches([new], during.headers, during.body)
    assert not signature_matches([old], after.headers, after.body)
    assert signature_matches([new], after.headers, after.body)
