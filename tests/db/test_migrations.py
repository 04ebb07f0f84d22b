"""Migrations: a database made by the round-1 schema (revision 0001) keeps
every row when upgraded, and from then on no id is ever handed out twice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, func, insert, literal_column, select, table, text
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.db import schema
from stampbook.db.migrate import upgrade
from stampbook.kit.db import Database
from tests.conftest import DATABASES, POSTGRES_ADMIN_URL, Api
from tests.servers import scratch_database

NOW = datetime(2026, 1, 2, 3, 4, 5)
# Children before parents: deleting the newest row of each, in this order,
# never deletes (cascades into) a row the next step needs.
ID_TABLES = (
    (schema.webhook_attempt, "attempt_idx"),
    (schema.webhook_message, "message_idx"),
    (schema.stamp_event, "event_idx"),
    (schema.stamp, "stamp_idx"),
    (schema.webhook_endpoint, "webhook_idx"),
    (schema.api_key, "key_idx"),
    (schema.card, "card_idx"),
    (schema.account, "account_idx"),
)
ALL_TABLES = (
    "account",
    "api_key",
    "card",
    "stamp",
    "stamp_event",
    "idempotency_key",
    "server_setting",
    "webhook_endpoint",
    "webhook_message",
    "webhook_attempt",
)


def round_one_values(name: str, n: int) -> dict[str, Any]:
    """Row ``n`` of a round-1 table. Every child names row 1 of its parents,
    so row 2 of any table is nobody's parent."""
    owners = {"account_idx": 1, "card_idx": 1}
    rows: dict[str, dict[str, Any]] = {
        "account": {"name": f"shop-{n}", "created_at": NOW},
        "api_key": {
            "account_idx": 1,
            "prefix": f"sb_{n}",
            "key_hash": f"{n:064d}",
            "created_at": NOW,
        },
        "card": {"account_idx": 1, "card_nm": f"Card {n}", "max_stamps": 10, "reg_ymdt": NOW},
        "stamp": {
            **owners,
            "token": f"token-{n:028d}",
            "strt_ymd": date(2026, 1, 1),
            "end_ymd": date(2026, 12, 31),
            "user_id": f"user{n}",
            "max_stamps": 10,
            "reg_ymdt": NOW,
        },
        "stamp_event": {
            **owners,
            "stamp_idx": 1,
            "action": "CREATE",
            "stamps_before": 0,
            "stamps_after": 0,
            "source": "API",
            "reg_ymdt": NOW,
        },
        "idempotency_key": {
            "account_idx": 1,
            "idem_key": f"key-{n}",
            "fingerprint": "f" * 64,
            "status_code": 200,
            "response_body": b'{"code":0}',
            "created_at": NOW,
        },
        "server_setting": {"name": f"setting-{n}", "value": "v"},
        "webhook_endpoint": {
            "account_idx": 1,
            "url": "http://127.0.0.1:9/hooks",
            "secret": "whsec_dGVzdA==",
            "reg_ymdt": NOW,
        },
        "webhook_message": {
            "account_idx": 1,
            "stamp_idx": 1,
            "webhook_idx": 1,
            "msg_id": f"msg_{n}",
            "event_type": "stamp.created",
            "payload": "{}",
            "next_attempt_at": NOW,
            "created_at": NOW,
        },
        "webhook_attempt": {"message_idx": 1, "attempted_at": NOW, "latency_ms": 3},
    }
    return rows[name]


def run(coroutine: Any) -> Any:
    """Run a coroutine from a synchronous test (Alembic runs its own event loop)."""
    return asyncio.run(coroutine)


async def in_database(url: str, work: Any) -> Any:
    """``work(conn)`` in one write transaction on ``url``."""
    database = Database(url, pool_size=1)
    try:
        async with database.write() as conn:
            return await work(conn)
    finally:
        await database.dispose()


def _insert_columns(name: str, n: int) -> Any:
    values = round_one_values(name, n)
    return insert(schema.metadata.tables[name]).values(**values)


async def every_row(conn: AsyncConnection) -> dict[str, list[dict[str, Any]]]:
    """Every row of every round-1 table, by table, in key order."""
    rows = {}
    for name in ALL_TABLES:
        query = select(literal_column("*")).select_from(table(name)).order_by(literal_column("1"))
        rows[name] = [dict(row._mapping) for row in (await conn.execute(query)).all()]
    return rows


def common_columns(
    before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """``before`` restricted to the columns the upgraded schema still has."""
    kept = {}
    for name, rows in before.items():
        columns = set(after[name][0]) if after[name] else set()
        kept[name] = [{k: v for k, v in row.items() if k in columns} for row in rows]
    return kept


@pytest.fixture(params=DATABASES)
def round_one_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of its own at revision 0001 (the round-1 schema)."""
    with scratch_database(request.param, POSTGRES_ADMIN_URL, revision="0001") as url:
        yield url


def test_upgrading_a_round_one_database_keeps_every_row(round_one_url: str) -> None:
    async def fill(conn: AsyncConnection) -> dict[str, list[dict[str, Any]]]:
        for name in ALL_TABLES:
            for n in (1, 2):
                await conn.execute(_insert_columns(name, n))
        return await every_row(conn)

    before = run(in_database(round_one_url, fill))
    assert all(len(rows) == 2 for rows in before.values()), before

    upgrade(round_one_url)

    after = run(in_database(round_one_url, every_row))
    assert {name: len(rows) for name, rows in after.items()} == dict.fromkeys(ALL_TABLES, 2)
    # Columns added since round 1 start empty (or at their default); every
    # other value is kept.
    assert common_columns(before, after) == common_columns(after, before)
    added = {
        name: {column for row in rows for column in row} - {c for row in before[name] for c in row}
        for name, rows in after.items()
    }
    defaults = {"auto_renew_yn": "N", "max_adds_per_day": 0, "suspicious_adds_per_day": 0,
                "active_yn": "Y", "day_adds": 0}  # fmt: skip
    assert added == {
        **{name: set() for name in ALL_TABLES},
        "account": {"display_name", "logo_url"},
        "card": set(defaults) - {"day_adds"},
        "stamp": {"day_ymd", "day_adds", "next_stamp_idx"},
        "stamp_event": {"user_idx", "code_idx"},
    }
    assert all(
        row[column] == defaults.get(column)
        for name in added
        for row in after[name]
        for column in added[name]
    )


def test_after_the_upgrade_no_table_reuses_the_id_of_its_newest_row_once_deleted(
    round_one_url: str,
) -> None:
    async def fill(conn: AsyncConnection) -> None:
        for name in ALL_TABLES:
            for n in (1, 2):
                await conn.execute(_insert_columns(name, n))

    run(in_database(round_one_url, fill))
    upgrade(round_one_url)

    async def delete_newest_then_insert(conn: AsyncConnection) -> dict[str, tuple[int, int]]:
        ids = {}
        for owner, id_name in ID_TABLES:
            column = owner.c[id_name]
            newest = (await conn.execute(select(func.max(column)))).scalar_one()
            await conn.execute(delete(owner).where(column == newest))
            created = await conn.execute(_insert_columns(owner.name, 3).returning(column))
            ids[owner.name] = (newest, created.scalar_one())
        return ids

    ids = run(in_database(round_one_url, delete_newest_then_insert))
    assert all(new > deleted for deleted, new in ids.values()), ids


def test_ids_named_by_surviving_rows_are_not_handed_out_again(tmp_path: Any) -> None:
    """A stamp deleted before the upgrade is still named by its stamp.deleted
    message; the upgraded table starts above that id, not at its own max + 1."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")

    async def fill_then_delete_newest_stamp(conn: AsyncConnection) -> None:
        for name in ALL_TABLES:
            for n in (1, 2):
                await conn.execute(_insert_columns(name, n))
        message = round_one_values("webhook_message", 3) | {"stamp_idx": 2}
        await conn.execute(insert(schema.webhook_message).values(**message))
        await conn.execute(delete(schema.stamp).where(schema.stamp.c.stamp_idx == 2))

    run(in_database(url, fill_then_delete_newest_stamp))
    upgrade(url)

    async def new_stamp(conn: AsyncConnection) -> int:
        created = await conn.execute(
            _insert_columns("stamp", 3).returning(schema.stamp.c.stamp_idx)
        )
        return int(created.scalar_one())

    assert run(in_database(url, new_stamp)) == 3


async def test_a_deleted_stamp_card_or_webhook_id_is_never_given_again(api: Api) -> None:
    for _ in range(2):
        stamp_idx = await api.stamp()
        await api.ok("DELETE", "delete", params={"stampIdx": stamp_idx})
        assert await api.stamp() > stamp_idx
    card_idx = await api.card()
    await api.ok("DELETE", "card/delete", params={"cardIdx": card_idx})
    assert await api.card() > card_idx
    made = await api.ok("POST", "webhook/create", json={"url": "http://127.0.0.1:9/hooks"})
    await api.ok("DELETE", "webhook/delete", params={"webhookIdx": made["webhookIdx"]})
    again = await api.ok("POST", "webhook/create", json={"url": "http://127.0.0.1:9/hooks"})
    assert again["webhookIdx"] > made["webhookIdx"]


async def test_the_other_account_never_gets_a_deleted_stamp_id(api: Api, other_api: Api) -> None:
    stamp_idx = await api.stamp()
    await api.ok("DELETE", "delete", params={"stampIdx": stamp_idx})
    theirs = await other_api.stamp()
    assert theirs != stamp_idx
    # The till still holding the old id gets "not found", not the stranger's card.
    assert await api.add(stamp_idx) == 2001
    assert await other_api.count(theirs) == 0


async def test_the_migrated_database_matches_schema_py(database_url: str) -> None:
    """The tables the code builds queries from are the ones the migrations made
    (columns, types, indexes, keys): a change to one without the other fails here."""
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            differences = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}),
                    schema.metadata,
                )
            )
    finally:
        await database.dispose()
    assert differences == []


def test_a_later_rebuild_of_a_table_keeps_its_counter(tmp_path: Any) -> None:
    """Migrations after 0002 that rebuild a table on SQLite (batch mode) must not
    hand out again the ids of the newest rows deleted before them."""
    url = f"sqlite:///{tmp_path / 'at-0002.db'}"
    upgrade(url, "0002")

    async def fill_then_delete_newest_stamp(conn: AsyncConnection) -> None:
        for name in ("account", "card", "stamp"):
            for n in (1, 2):
                await conn.execute(_insert_columns(name, n))
        await conn.execute(delete(schema.stamp).where(schema.stamp.c.stamp_idx == 2))

    run(in_database(url, fill_then_delete_newest_stamp))
    upgrade(url)

    async def new_stamp(conn: AsyncConnection) -> int:
        created = await conn.execute(
            _insert_columns("stamp", 3).returning(schema.stamp.c.stamp_idx)
        )
        return int(created.scalar_one())

    assert run(in_database(url, new_stamp)) == 3


@pytest.fixture(params=DATABASES)
def migrated_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of its own, migrated to head."""
    with scratch_database(request.param, POSTGRES_ADMIN_URL) as url:
        yield url


def test_upgrading_an_upgraded_database_again_changes_nothing(migrated_url: str) -> None:
    """docs/deploy.md tells operators to run `stampbook db upgrade` before every
    release starts, so it must be safe on a database already at head: no
    revision moves, no row changes, and the schema still matches schema.py."""

    async def fill(conn: AsyncConnection) -> None:
        for name in ALL_TABLES:
            await conn.execute(_insert_columns(name, 1))

    async def state(conn: AsyncConnection) -> tuple[Any, Any, Any]:
        revision = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        differences = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), schema.metadata)
        )
        return revision, await every_row(conn), differences

    run(in_database(migrated_url, fill))
    before = run(in_database(migrated_url, state))
    upgrade(migrated_url)
    upgrade(migrated_url)
    after = run(in_database(migrated_url, state))
    assert after == before
    assert before[2] == [] and len(before[0]) == 1
