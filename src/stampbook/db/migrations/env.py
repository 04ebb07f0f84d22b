"""Alembic environment: runs migrations on the async engine of the configured URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from stampbook.config import async_database_url
from stampbook.db.schema import metadata

config = context.config
target_metadata = metadata


def _run(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        # Batch mode rebuilds a table by copying it and dropping the original;
        # with foreign keys on, that drop would cascade into the rows that refer
        # to it. The pragma is ignored inside a transaction, so it is set here,
        # before the migrations' one. (The app turns it on in each of its own
        # connections, kit/db.py; this connection is closed afterwards.)
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Migrate the database named by the ``sqlalchemy.url`` option."""
    url = async_database_url(config.get_main_option("sqlalchemy.url") or "")
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    asyncio.run(_run_async(url))


if context.is_offline_mode():
    raise SystemExit("Stampbook migrations run online only: use `stampbook db upgrade`.")
run_migrations_online()
