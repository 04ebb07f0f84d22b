"""SQLite's AUTOINCREMENT counters (``sqlite_sequence``), for migrations, and
``keep_ids_above`` for rows inserted with ids of their own (on both databases).

A batch-mode migration rebuilds a table by copying it and dropping the
original, and dropping an AUTOINCREMENT table drops its counter too: the copy
starts again at its highest remaining id, so the ids of the newest rows
deleted before the rebuild would be handed out again. Every rebuild of such a
table runs inside ``sequence_kept``. PostgreSQL's sequences are untouched by
all this; the helpers do nothing there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import op
from sqlalchemy import cast, func, select
from sqlalchemy.dialects.postgresql import REGCLASS
from sqlalchemy.engine import Connection


def raise_sequence(bind: Connection, table: str, floor: int) -> None:
    """Make the next id SQLite gives ``table`` exceed ``floor`` (never lower it)."""
    if bind.dialect.name != "sqlite" or floor <= 0:
        return
    # sqlite_sequence has one row per AUTOINCREMENT table that ever held a row.
    updated = bind.exec_driver_sql(
        "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (floor, table)
    )
    if not updated.rowcount:
        bind.exec_driver_sql(
            "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, floor)
        )


@contextmanager
def sequence_kept(table: str) -> Iterator[None]:
    """Around a rebuild of ``table``: its AUTOINCREMENT counter survives it."""
    bind = op.get_bind()
    seq = None
    if bind.dialect.name == "sqlite":
        query = "SELECT max(seq) FROM sqlite_sequence WHERE name = ?"
        seq = bind.exec_driver_sql(query, (table,)).scalar()
    yield
    if seq:
        raise_sequence(bind, table, int(seq))


def keep_ids_above(bind: Connection, table: str, column: str, floor: int) -> None:
    """Make the next generated ``column`` of ``table`` exceed ``floor`` on either
    database (never lower it): rows inserted with ids of their own (an import)
    must not be followed by a generated id that is already taken.

    SQLite: the AUTOINCREMENT counter (which an explicit id above it already
    raises; this makes it certain). PostgreSQL: ``setval`` on the column's
    sequence, which takes effect at once, whatever becomes of the transaction.
    """
    if bind.dialect.name == "sqlite":
        raise_sequence(bind, table, floor)
        return
    sequence = cast(func.pg_get_serial_sequence(table, column), REGCLASS)
    current = func.coalesce(func.pg_sequence_last_value(sequence), 0)
    bind.execute(select(func.setval(sequence, func.greatest(floor, current))))
