"""Idempotency-Key: a retried write replays its first answer and changes nothing.

Semantics of the IETF Idempotency-Key draft and Stripe: per account, the key
binds to one request (method, path, parameters); the first response is stored
in the write's own transaction; malformed requests are never stored.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import insert
from typer.testing import CliRunner

from stampbook import cli
from stampbook.app import create_app
from stampbook.config import Settings
from stampbook.db.schema import idempotency_key
from stampbook.kit import idempotency
from stampbook.kit.clock import FrozenClock, utc_naive
from stampbook.kit.db import Database
from stampbook.kit.errors import Code, StampbookError
from tests.conftest import Api, subscribed
from tests.kit.conftest import KEY, envelope, put_add, queued, stored_keys

# -- replay ---------------------------------------------------------------------------


async def test_a_retried_add_replays_the_first_answer_and_adds_nothing(
    api: Api, database_url: str
) -> None:
    stamp_idx = await api.stamp()

    async with subscribed(database_url, api):
        first = await put_add(api, stamp_idx)
        retries = [await put_add(api, stamp_idx) for _ in range(3)]
        added_messages = await queued(database_url, stamp_idx, "stamp.added")

    assert envelope(first) == (200, 0)
    assert "Idempotent-Replayed" not in first.headers
    for retry in retries:
        assert (retry.status_code, retry.content) == (first.status_code, first.content)
        assert retry.headers["Idempotent-Replayed"] == "true"
    assert await api.count(stamp_idx) == 1
    assert [e["action"] for e in await api.history(stamp_idx)] == ["ADD", "CREATE"]
    assert added_messages == 1


async def test_a_refused_add_is_replayed_even_once_the_rule_would_allow_it(api: Api) -> None:
    # The accepted-add path tries the conditional UPDATE before it records the
    # key: here the UPDATE succeeds, the key is found taken, and the whole
    # attempt must vanish so that the stored refusal answers.
    stamp_idx = await api.stamp(await api.card(minIntervalSec=60))
    assert await api.add(stamp_idx) == 0
    refused = await put_add(api, stamp_idx, key="too-soon")
    assert envelope(refused) == (200, 2011)

    api.clock.advance(seconds=61)
    retry = await put_add(api, stamp_idx, key="too-soon")

    assert (retry.status_code, retry.content) == (refused.status_code, refused.content)
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert await api.count(stamp_idx) == 1
    assert [e["action"] for e in await api.history(stamp_idx)] == ["ADD", "CREATE"]


async def test_a_refused_remove_is_replayed_even_once_there_is_a_stamp_to_take(api: Api) -> None:
    stamp_idx = await api.stamp()
    keyed = {"Idempotency-Key": "undo-nothing"}
    refused = await api.call("PUT", "remove", json={"stampIdx": stamp_idx}, headers=keyed)
    assert envelope(refused) == (200, 2007)

    assert await api.add(stamp_idx) == 0
    retry = await api.call("PUT", "remove", json={"stampIdx": stamp_idx}, headers=keyed)

    assert (retry.status_code, retry.content) == (refused.status_code, refused.content)
    assert await api.count(stamp_idx) == 1
    assert [e["action"] for e in await api.history(stamp_idx)] == ["ADD", "CREATE"]


async def test_a_retried_create_returns_the_same_stamp_and_issues_one(api: Api) -> None:
    card_idx = await api.card()
    body = {"cardIdx": card_idx, "strtYmd": str(api.today), "endYmd": str(api.today)}

    first = await api.call("POST", "create", json=body, headers=KEY)
    retry = await api.call("POST", "create", json=body, headers=KEY)

    assert first.content == retry.content
    assert retry.headers["Idempotent-Replayed"] == "true"
    page = await api.ok("GET", "list", params={"cardIdx": card_idx})
    assert [item["stampIdx"] for item in page["items"]] == [first.json()["result"]]


async def test_card_writes_replay_too(api: Api) -> None:
    body = {"cardNm": "Tea", "maxStamps": 8}

    first = await api.call("POST", "card/create", json=body, headers=KEY)
    retry = await api.call("POST", "card/create", json=body, headers=KEY)

    assert first.content == retry.content
    assert retry.headers["Idempotent-Replayed"] == "true"
    page = await api.ok("GET", "card/list")
    assert [item["cardIdx"] for item in page["items"]] == [first.json()["result"]]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "remove", None),
        ("PUT", "update", {"memo": "VIP"}),
        ("PUT", "redeem", None),
    ],
)
async def test_every_stamp_write_is_recorded_once(
    api: Api, method: str, path: str, body: dict[str, Any] | None
) -> None:
    stamp_idx = await api.stamp(await api.card(maxStamps=1))
    assert await api.add(stamp_idx) == 0
    json = {"stampIdx": stamp_idx, **(body or {})}

    first = await api.call(method, path, json=json, headers=KEY)
    retry = await api.call(method, path, json=json, headers=KEY)

    assert envelope(first) == (200, 0)
    assert retry.content == first.content
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert len(await api.history(stamp_idx)) == 3  # CREATE, ADD, and this write once


async def test_a_retried_delete_replays_success_although_the_stamp_is_gone(api: Api) -> None:
    stamp_idx = await api.stamp()
    params = {"stampIdx": stamp_idx}

    first = await api.call("DELETE", "delete", params=params, headers=KEY)
    retry = await api.call("DELETE", "delete", params=params, headers=KEY)
    unkeyed = await api.call("DELETE", "delete", params=params)

    assert envelope(first) == envelope(retry) == (200, 0)
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert envelope(unkeyed) == (200, Code.STAMP_NOT_FOUND)


async def test_a_delete_key_is_bound_to_its_query(api: Api) -> None:
    one, two = await api.stamp(), await api.stamp()

    assert await api.code("DELETE", "delete", params={"stampIdx": one}, headers=KEY) == 0
    response = await api.call("DELETE", "delete", params={"stampIdx": two}, headers=KEY)

    assert envelope(response) == (422, Code.IDEMPOTENCY_KEY_REUSED)
    assert (await api.validate(two)).json()["code"] == 0


async def test_a_business_refusal_is_replayed_as_it_was_first_answered(api: Api) -> None:
    stamp_idx = await api.stamp(await api.card(maxStamps=1))
    assert await api.add(stamp_idx) == 0

    refused = await put_add(api, stamp_idx)
    assert await api.code("PUT", "remove", json={"stampIdx": stamp_idx}) == 0
    retry = await put_add(api, stamp_idx)

    assert envelope(refused) == (200, Code.STAMP_FULL)
    assert retry.content == refused.content
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert await api.count(stamp_idx) == 0


async def test_the_replay_keeps_the_first_language(api: Api) -> None:
    first = await api.call(
        "PUT", "add", json={"stampIdx": 999_999}, headers={**KEY, "Accept-Language": "ko"}
    )
    retry = await api.call("PUT", "add", json={"stampIdx": 999_999}, headers=KEY)

    assert retry.content == first.content
    assert "스탬프" in retry.json()["message"]


async def test_parameters_are_compared_by_meaning_not_by_spelling(api: Api) -> None:
    stamp_idx = await api.stamp()
    body = {"stampIdx": stamp_idx, "memo": "a", "userNm": "Kim"}
    # Unknown fields are refused (1001), so only order and spacing can differ.
    reordered = {"userNm": "Kim", "memo": "a", "stampIdx": stamp_idx}

    first = await api.call("PUT", "update", json=body, headers=KEY)
    retry = await api.call("PUT", "update", json=reordered, headers=KEY)

    assert retry.content == first.content
    assert retry.headers["Idempotent-Replayed"] == "true"


# -- the stored record ------------------------------------------------------------------


async def test_an_unfinished_key_answers_1302_and_another_request_1301_first(
    database_url: str, api: Api
) -> None:
    """A key row without a response (a first request still running) is 1302 for its
    twin; a different request under that key is 1301 whatever the first's state."""
    database = Database(database_url, pool_size=1)
    now = api.clock.now().replace(tzinfo=None)
    try:
        async with database.write() as conn:
            assert await idempotency.claim(
                conn, account_idx=api.account_idx, key="running", fingerprint="f1", now=now
            )
        async with database.write() as conn:
            with pytest.raises(StampbookError) as in_flight:
                await idempotency.stored(
                    conn, account_idx=api.account_idx, key="running", fingerprint="f1"
                )
            with pytest.raises(StampbookError) as reused:
                await idempotency.stored(
                    conn, account_idx=api.account_idx, key="running", fingerprint="f2"
                )
    finally:
        await database.dispose()
    assert in_flight.value.code == Code.IDEMPOTENCY_IN_FLIGHT
    assert in_flight.value.http_status == 409
    assert reused.value.code == Code.IDEMPOTENCY_KEY_REUSED


def test_the_fingerprint_covers_method_path_and_parameters() -> None:
    base = idempotency.fingerprint("PUT", "/api/stamp/v1/add", {"stampIdx": 1})
    assert base == idempotency.fingerprint("PUT", "/api/stamp/v1/add", {"stampIdx": 1})
    assert base != idempotency.fingerprint("PUT", "/api/stamp/v1/remove", {"stampIdx": 1})
    assert base != idempotency.fingerprint("POST", "/api/stamp/v1/add", {"stampIdx": 1})
    assert base != idempotency.fingerprint("PUT", "/api/stamp/v1/add", {"stampIdx": 2})


# -- retention ----------------------------------------------------------------------------


async def test_keys_live_24_hours_then_the_purge_frees_them(
    api: Api, database_url: str, clock: FrozenClock
) -> None:
    stamp_idx = await api.stamp()
    assert (await put_add(api, stamp_idx)).json()["code"] == 0
    database = Database(database_url, pool_size=1)
    try:
        clock.advance(hours=23, minutes=59)
        async with database.write() as conn:
            await idempotency.purge(conn, now=clock.now().replace(tzinfo=None), retention_hours=24)
        assert (await put_add(api, stamp_idx)).headers["Idempotent-Replayed"] == "true"

        clock.advance(minutes=2)
        async with database.write() as conn:
            removed = await idempotency.purge(
                conn, now=clock.now().replace(tzinfo=None), retention_hours=24
            )
    finally:
        await database.dispose()

    assert removed >= 1
    assert await stored_keys(database_url, api.account_idx) == []
    again = await put_add(api, stamp_idx)
    assert "Idempotent-Replayed" not in again.headers
    assert await api.count(stamp_idx) == 2


async def test_the_server_purges_expired_keys_by_itself(
    api: Api, database_url: str, settings: Settings, clock: FrozenClock
) -> None:
    assert (await put_add(api, await api.stamp())).json()["code"] == 0
    later = FrozenClock(clock.now() + timedelta(hours=25))

    served: FastAPI = create_app(settings, clock=later, background=True)
    async with served.router.lifespan_context(served):
        for _ in range(200):
            if not await stored_keys(database_url, api.account_idx):
                break
            await asyncio.sleep(0.05)

    assert await stored_keys(database_url, api.account_idx) == []


def test_the_cli_purges_expired_keys(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import new_key

    _, account_idx = asyncio.run(new_key(database_url))

    async def seed() -> None:
        database = Database(database_url, pool_size=1)
        try:
            async with database.write() as conn:
                for key, age in (("old", 25), ("fresh", 1)):
                    await conn.execute(
                        insert(idempotency_key).values(
                            account_idx=account_idx,
                            idem_key=key,
                            fingerprint="f",
                            status_code=200,
                            response_body=b"{}",
                            created_at=utc_naive(datetime.now(UTC) - timedelta(hours=age)),
                        )
                    )
        finally:
            await database.dispose()

    asyncio.run(seed())
    monkeypatch.setenv("STAMPBOOK_DATABASE_URL", database_url)

    result = CliRunner().invoke(cli.app, ["idempotency", "purge"])

    assert result.exit_code == 0, result.output
    assert "purged" in result.output
    assert asyncio.run(stored_keys(database_url, account_idx)) == ["fresh"]
