"""An account's first endpoint gets the very next add's webhook: the add skips
the outbox only while the account has no endpoint, and learns of a new one
at once (stamps/hot_path.py asks inside its own transaction)."""

from __future__ import annotations

from stampbook.stamps import service
from stampbook.webhooks import outbox
from tests.conftest import Api
from tests.webhooks.conftest import RECEIVER, Hooks


async def test_the_first_endpoint_gets_the_next_add(api: Api, hooks: Hooks) -> None:
    stamp_idx = await api.stamp()
    before = service.ONE_STEP["ADD"]
    await api.ok("PUT", "add", json={"stampIdx": stamp_idx})  # no endpoint yet: no message

    webhook_idx, _ = await hooks.create(RECEIVER)
    await api.ok("PUT", "add", json={"stampIdx": stamp_idx})

    # Both adds took the one-step path (the one that may skip the outbox).
    assert service.ONE_STEP["ADD"] - before == 2
    log = await hooks.log(webhook_idx)
    assert [(m["eventType"], m["payload"]["data"]["stampsAfter"]) for m in log] == [
        (outbox.STAMP_ADDED, 2)
    ], log
