"""SQLite's AUTOINCREMENT counters (``sqlite_sequence``), for migrations.

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
