"""What receipt codes, the daily threshold and the next cycle tell webhook
receivers: ``stamp.suspicious`` after an add past the card's threshold (on
the one-step path and the general one), ``codeIdx`` on a claim's
``stamp.added``, ``nextStampIdx`` on a renewing card's ``stamp.used``."""

from __future__ import annotations

from typing import Any

from stampbook.stamps import service
from tests.codes.conftest import claim, new_code
from tests.conftest import Api
from tests.webhooks.conftest import RECEIVER, Hooks


def kinds(log: list[dict[str, Any]]) -> list[str]:
    return [message["eventType"] for message in log]


async def test_adds_past_the_cards_threshold_send_stamp_suspicious(api: Api, hooks: Hooks) -> None:
    webhook_idx, _ = await hooks.create(RECEIVER)
    stamp_idx = await api.stamp(await api.card(suspiciousAddsPerDay=2))
    one_step = service.ONE_STEP["ADD"]
    for _ in range(4):
        assert await api.add(stamp_idx) == 0
    assert service.ONE_STEP["ADD"] == one_step + 4  # the one-step path sends it too

    log = await hooks.log(webhook_idx)
    assert kinds(log) == [
        "stamp.created",
        "stamp.added",
        "stamp.added",
        "stamp.added",
        "stamp.suspicious",
        "stamp.added",
        "stamp.suspicious",
    ]
    data = log[4]["payload"]["data"]
    assert (data["stampIdx"], data["stampsAfter"], data["source"]) == (stamp_idx, 3, "API")
    # It shares the ledger row of the add that crossed the threshold.
    assert data["eventIdx"] == log[3]["payload"]["data"]["eventIdx"]


async def test_a_threshold_of_zero_never_sends_it(api: Api, hooks: Hooks) -> None:
    webhook_idx, _ = await hooks.create(RECEIVER)
    stamp_idx = await api.stamp(await api.card())
    for _ in range(5):
        await api.add(stamp_idx)
    assert "stamp.suspicious" not in kinds(await hooks.log(webhook_idx))


async def test_a_claims_stamp_added_names_the_code(api: Api, hooks: Hooks) -> None:
    webhook_idx, _ = await hooks.create(RECEIVER)
    card_idx = await api.card(suspiciousAddsPerDay=1)
    stamp_idx = await api.stamp(card_idx)
    created = await new_code(api, card_idx, stamps=2)
    assert await claim(api, created["code"], stamp_idx) == 0

    log = await hooks.log(webhook_idx)
    assert kinds(log) == ["stamp.created", "stamp.added", "stamp.suspicious"]
    added = log[1]["payload"]["data"]
    assert (added["source"], added["stampsBefore"], added["stampsAfter"]) == ("CODE", 0, 2)
    assert added["codeIdx"] == created["codeIdx"]
    assert list(added)[-1] == "codeIdx"


async def test_a_renewing_cards_stamp_used_names_the_next_stamp(api: Api, hooks: Hooks) -> None:
    webhook_idx, _ = await hooks.create(RECEIVER)
    stamp_idx = await api.stamp(await api.card(maxStamps=1, autoRenewYn="Y"))
    await api.add(stamp_idx)
    await api.ok("PUT", "redeem", json={"stampIdx": stamp_idx})

    log = await hooks.log(webhook_idx)
    assert kinds(log) == ["stamp.created", "stamp.added", "stamp.completed", "stamp.created",
                          "stamp.used"]  # fmt: skip
    renewed = log[3]["payload"]["data"]["stampIdx"]
    used = log[4]["payload"]["data"]
    assert used["stampIdx"] == stamp_idx and used["nextStampIdx"] == renewed != stamp_idx
    listed = {item["stampIdx"] for item in (await api.ok("GET", "list"))["items"]}
    assert renewed in listed


async def test_an_endpoint_can_ask_for_stamp_suspicious_only(api: Api, hooks: Hooks) -> None:
    webhook_idx, _ = await hooks.create(RECEIVER, events=["stamp.suspicious"])
    stamp_idx = await api.stamp(await api.card(suspiciousAddsPerDay=1))
    await api.add(stamp_idx)
    await api.add(stamp_idx)
    assert kinds(await hooks.log(webhook_idx)) == ["stamp.suspicious"]
