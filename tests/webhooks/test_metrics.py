"""The dispatcher's attempts and delivery latency reach /metrics, and the
outbox's depth is counted at each scrape."""

from __future__ import annotations

import httpx

from stampbook.kit.clock import FrozenClock
from stampbook.webhooks.dispatcher import Dispatcher
from tests.conftest import Api
from tests.test_metrics import scrape, value
from tests.webhooks.conftest import Answer, Hooks, Receiver


async def test_attempts_by_outcome_delivery_latency_and_queue_depth(
    api: Api, hooks: Hooks, receiver: Receiver, dispatcher: Dispatcher, clock: FrozenClock
) -> None:
    await hooks.listen(receiver)
    receiver.answer(Answer(500, body=b"boom"))
    before = await scrape(api.http)
    await api.stamp()
    queued = await scrape(api.http)
    assert value(queued, "stampbook_webhook_queue_depth") >= 1

    await dispatcher.drain()  # the 500: retried in 5 s
    clock.advance(seconds=5)
    await dispatcher.drain()  # delivered, 5 s after the change
    after = await scrape(api.http)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("stampbook_webhook_attempts_total", outcome="retry") == 1
    assert delta("stampbook_webhook_attempts_total", outcome="delivered") == 1
    assert delta("stampbook_webhook_attempt_duration_seconds_count") == 2
    assert delta("stampbook_webhook_delivery_latency_seconds_count") == 1
    # Delivered 5 s (on the test's clock) after the message was queued.
    assert delta("stampbook_webhook_delivery_latency_seconds_bucket", le="2.5") == 0
    assert delta("stampbook_webhook_delivery_latency_seconds_bucket", le="10.0") == 1
    assert (
        value(after, "stampbook_webhook_queue_depth")
        == value(queued, "stampbook_webhook_queue_depth") - 1
    )


async def test_the_queue_depth_is_the_servers_pending_messages(
    api: Api, hooks: Hooks, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    before = value(await scrape(client), "stampbook_webhook_queue_depth")
    await hooks.listen(receiver)
    await api.stamp()
    await api.stamp()
    assert value(await scrape(client), "stampbook_webhook_queue_depth") == before + 2
