"""The outbox: every accepted change queues its events in its own transaction,
and a refused or failed change queues nothing."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest

from stampbook.kit.clock import FrozenClock
from stampbook.webhooks import outbox
from stampbook.webhooks.schemas import EventType
from tests.conftest import Api
from tests.webhooks.conftest import RECEIVER, Hooks

# The stamp in a payload: validate's fields but the on-site password.
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
# A receiver's copy of the stamp: the staff's on-site password stays with the API.
RECEIVER_VIEW_FIELDS = [name for name in STAMP_VIEW_FIELDS if name != "onsitePwd"]


def receivers_copy(view: dict[str, Any]) -> dict[str, Any]:
    """validate's stamp object as a webhook receiver gets it."""
    return {name: value for name, value in view.items() if name != "onsitePwd"}


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
    assert list(data) == [
        *RECEIVER_VIEW_FIELDS,
        "stampsBefore",
        "stampsAfter",
        "source",
        "eventIdx",
    ]
    assert data["stampIdx"] == stamp_idx and data["stamps"] == data["maxStamps"] == 2
    assert data["source"] == "API"
    # eventIdx names the ledger row; stamp.completed shares the row of the add
    # that filled the card, and a deletion (which takes the ledger with it) has none.
    event_idxs = [m["payload"]["data"]["eventIdx"] for m in log]
    assert event_idxs[:5] + event_idxs[6:8] == ledger
    assert event_idxs[5] == event_idxs[4]
    assert event_idxs[8] is None


TRICKY_TEXT = 'Zoë "the regular" \\ 김민지\n\ttab \u2028 <b>&</b>'


@pytest.mark.parametrize(
    ("card_fields", "stamp_fields", "timezone"),
    [
        ({}, {}, None),
        (
            {"cardTtl": TRICKY_TEXT, "url": "https://shop.example/", "stampImgUrl": "https://i/x.png"},
            {"domain": "https://cafe.example//", "memo": TRICKY_TEXT, "userNm": TRICKY_TEXT,
             "userEtc1": "", "userEml": "a@b.example"},
            "Asia/Seoul",
        ),
        ({"onsiteYn": "Y", "onsitePwd": "1234"}, {"userPhnno": "010-5678"}, "America/St_Johns"),
    ],
)  # fmt: skip
async def test_an_add_queues_the_stamp_exactly_as_validate_shows_it(
    app: Any,
    api: Api,
    hooks: Hooks,
    card_fields: dict[str, Any],
    stamp_fields: dict[str, Any],
    timezone: str | None,
) -> None:
    # An accepted add is queued by the one-step path (one statement on
    # PostgreSQL); its payload must be validate's stamp, field for field.
    if timezone is not None:
        await set_timezone(app, api, timezone)
    webhook_idx, _ = await hooks.create(RECEIVER)
    card_idx = await api.card(maxStamps=2, **card_fields)
    stamp_idx = await api.stamp(card_idx, **stamp_fields)
    await api.add(stamp_idx)
    first_view = await api.ok("GET", "validate", params={"stampIdx": stamp_idx})
    await api.add(stamp_idx)
    full_view = await api.ok("GET", "validate", params={"stampIdx": stamp_idx})
    ledger = [event["eventIdx"] for event in reversed(await api.history(stamp_idx))]

    log = await hooks.log(webhook_idx)
    assert kinds(log) == ["stamp.created", "stamp.added", "stamp.added", "stamp.completed"]
    for message, view, stamps_after, event_idx in zip(
        log[1:], [first_view, full_view, full_view], [1, 2, 2], ledger[1:] + ledger[2:], strict=True
    ):
        payload = message["payload"]
        assert list(payload) == ["type", "timestamp", "data"]
        assert payload["type"] == message["eventType"]
        assert payload["timestamp"] == log[0]["payload"]["timestamp"]  # the clock is frozen
        assert payload["data"] == {
            **receivers_copy(view),
            "stampsBefore": stamps_after - 1,
            "stampsAfter": stamps_after,
            "source": "API",
            "eventIdx": event_idx,
        }
        assert list(payload["data"]) == list(log[0]["payload"]["data"])


async def test_a_remove_queues_the_stamp_exactly_as_validate_shows_it(
    app: Any, api: Api, hooks: Hooks
) -> None:
    await set_timezone(app, api, "Asia/Seoul")
    webhook_idx, _ = await hooks.create(RECEIVER, events=["stamp.removed"])
    stamp_idx = await api.stamp(await api.card(), memo=TRICKY_TEXT, domain="https://cafe.example/")
    await api.add(stamp_idx)
    await api.add(stamp_idx)
    assert await api.code("PUT", "remove", json={"stampIdx": stamp_idx}) == 0
    view = await api.ok("GET", "validate", params={"stampIdx": stamp_idx})
    last_event = (await api.history(stamp_idx))[0]

    [message] = await hooks.log(webhook_idx)
    assert message["eventType"] == "stamp.removed"
    assert message["payload"]["data"] == {
        **receivers_copy(view),
        "stampsBefore": 2,
        "stampsAfter": 1,
        "source": "API",
        "eventIdx": last_event["eventIdx"],
    }
    assert last_event["action"] == "REMOVE"


async def test_a_time_zone_the_database_does_not_know_still_adds(
    api: Api, hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The payload is rendered in Python at delivery, so a zone PostgreSQL's tz
    # database lacks (an older tzdata there) never reaches the database.
    from stampbook.kit import call as kit_call

    unknown = utc_named("Mars/Olympus_Mons")
    monkeypatch.setattr(kit_call, "zone_for", lambda _name: unknown)
    webhook_idx, _ = await hooks.create(RECEIVER, events=["stamp.added"])
    stamp_idx = await api.stamp()

    assert await api.add(stamp_idx) == 0

    assert await api.count(stamp_idx) == 1
    [message] = await hooks.log(webhook_idx)
    view = await api.ok("GET", "validate", params={"stampIdx": stamp_idx})
    assert message["payload"]["data"]["regYmdt"] == view["regYmdt"]


def utc_named(name: str) -> ZoneInfo:
    """UTC's rules under a name no tz database has."""
    with open("/usr/share/zoneinfo/UTC", "rb") as utc:
        return ZoneInfo.from_file(utc, key=name)


async def set_timezone(app: Any, api: Api, timezone: str) -> None:
    from sqlalchemy import select

    from stampbook.accounts import service as accounts
    from stampbook.db.schema import account

    async with app.state.runtime.db.write() as conn:
        name = (
            await conn.execute(
                select(account.c.name).where(account.c.account_idx == api.account_idx)
            )
        ).scalar_one()
        await accounts.set_account_options(conn, name=name, timezone=timezone)


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


async def test_settled_messages_are_purged_after_the_retention_and_pending_ones_never(
    app: Any, api: Api, database_url: str, clock: FrozenClock
) -> None:
    from sqlalchemy import func, select, update

    from stampbook.db.schema import webhook_message
    from stampbook.jobs import housekeeping

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
