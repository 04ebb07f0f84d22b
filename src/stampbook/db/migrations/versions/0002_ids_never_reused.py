"""ids are never reused: SQLite tables rebuilt with AUTOINCREMENT

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 10:00:00

Without AUTOINCREMENT, SQLite hands out max(rowid) + 1, so deleting the
newest stamp (card, event, webhook, message) gives its id to the next row
created, possibly another account's: a till still holding the old stampIdx
would then stamp a stranger's card. Each table with a generated id is rebuilt
(Alembic batch mode: a copy with ``sqlite_autoincrement``, every row, index,
foreign key and constraint kept, then renamed into place).

PostgreSQL needs nothing: its id columns are sequences (BIGSERIAL), which
never hand out a number twice, so this revision does nothing there.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from stampbook.db.sequences import raise_sequence

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every table whose id the database generates, parents first.
TABLES = (
    "account",
    "api_key",
    "card",
    "stamp",
    "stamp_event",
    "webhook_endpoint",
    "webhook_message",
    "webhook_attempt",
)
ID_COLUMNS = {
    "account": "account_idx",
    "api_key": "key_idx",
    "card": "card_idx",
    "stamp": "stamp_idx",
    "stamp_event": "event_idx",
    "webhook_endpoint": "webhook_idx",
    "webhook_message": "message_idx",
    "webhook_attempt": "attempt_idx",
}
# Columns that keep naming a row after it is gone (no foreign key removes
# them): a stamp.deleted message names its stamp, a ledger row the card it
# was on, a filtered endpoint its card. The ids they hold were handed out
# already, so the sequence starts above them too.
SURVIVING_REFERENCES = {
    "account": (("stamp_event", "account_idx"), ("webhook_message", "account_idx")),
    "api_key": (("stamp_event", "key_idx"),),
    "card": (("stamp_event", "card_idx"), ("webhook_endpoint", "card_idx")),
    "stamp": (("webhook_message", "stamp_idx"),),
}


def upgrade() -> None:
    """Rebuild every SQLite table with a generated id as AUTOINCREMENT."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return  # PostgreSQL sequences never reuse a value.
    # Rebuilding drops each old table; with foreign keys on, that drop would
    # delete (cascade) the rows referring to it. The pragma cannot change
    # inside a transaction, so env.py turns it off before the migrations'.
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("SQLite foreign keys must be off while tables are rebuilt")
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass
    for table in TABLES:
        _start_sequence_above_known_ids(table)
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"foreign keys broken by the rebuild: {broken[:5]}")


def _start_sequence_above_known_ids(table: str) -> None:
    """Make the next id of ``table`` exceed every id it holds or ever gave out
    that some surviving row still names."""
    bind = op.get_bind()
    named = ((table, ID_COLUMNS[table]), *SURVIVING_REFERENCES.get(table, ()))
    highest = max(
        bind.exec_driver_sql(f"SELECT max({column}) FROM {source}").scalar() or 0
        for source, column in named
    )
    raise_sequence(bind, table, int(highest))


def downgrade() -> None:
    """Rebuild the tables without AUTOINCREMENT (ids may be reused again)."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ):
            pass
