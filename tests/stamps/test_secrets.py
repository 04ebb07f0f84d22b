"""The card's on-site password is shown by validate (the contract) and nowhere
else: not in webhook payloads, which the delivery log keeps for 30 days, nor
in list items."""

from __future__ import annotations

from sqlalchemy import select

from stampbook.db.schema import webhook_message
from stampbook.kit.db import Database
from stampbook.webhooks.outbox import deliverable
from tests.conftest import Api, subscribed

PASSWORD = "staff-secret-8642"


async def stored_payloads(database_url: str, account_idx: int) -> list[tuple[str, str]]:
    """Every queued message of the account: (event type, payload as stored)."""
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            rows = await conn.execute(
                select(webhook_message.c.event_type, webhook_message.c.payload).where(
                    webhook_message.c.account_idx == account_idx
                )
            )
            return [(row.event_type, row.payload) for row in rows]
    finally:
        await database.dispose()


async def test_no_webhook_payload_carries_the_onsite_password(api: Api, database_url: str) -> None:
    # Created, updated, used and deleted are recorded by the general path; on
    # PostgreSQL an accepted add or remove records its change in SQL
    # (stamps/hot_path.py). Neither record may hold the password, and neither
    # may the payload rendered from it at delivery.
    card_idx = await api.card(maxStamps=2, onsiteYn="Y", onsitePwd=PASSWORD)
    async with subscribed(database_url, api):
        stamp_idx = await api.stamp(card_idx)
        assert await api.add(stamp_idx) == 0
        assert await api.code("PUT", "remove", json={"stampIdx": stamp_idx}) == 0
        assert await api.add(stamp_idx) == 0
        assert await api.add(stamp_idx) == 0
        update = {"stampIdx": stamp_idx, "memo": "regular"}
        assert await api.code("PUT", "update", json=update) == 0
        redeem = {"stampIdx": stamp_idx, "onsitePwd": PASSWORD}
        assert await api.code("PUT", "redeem", json=redeem) == 0
        assert await api.code("DELETE", "delete", params={"stampIdx": stamp_idx}) == 0

        payloads = await stored_payloads(database_url, api.account_idx)

    assert {event_type for event_type, _ in payloads} == {
        "stamp.created",
        "stamp.added",
        "stamp.removed",
        "stamp.completed",
        "stamp.updated",
        "stamp.used",
        "stamp.deleted",
    }
    assert len(payloads) == 9
    for event_type, stored in payloads:
        assert PASSWORD not in stored, event_type
        assert "onsite_pwd" not in stored, event_type
        delivered = deliverable(stored).decode()
        assert "onsitePwd" not in delivered, event_type
        assert PASSWORD not in delivered, event_type
        assert '"onsiteYn"' in delivered, event_type


async def test_list_items_leave_the_password_out_and_validate_keeps_it(api: Api) -> None:
    card_idx = await api.card(onsiteYn="Y", onsitePwd=PASSWORD)
    stamp_idx = await api.stamp(card_idx)

    listed = await api.call("GET", "list", params={"cardIdx": card_idx})
    validated = await api.validate(stamp_idx)

    assert listed.json()["result"]["items"][0]["stampIdx"] == stamp_idx
    assert "onsitePwd" not in listed.text and PASSWORD not in listed.text
    assert validated.json()["result"]["onsitePwd"] == PASSWORD
