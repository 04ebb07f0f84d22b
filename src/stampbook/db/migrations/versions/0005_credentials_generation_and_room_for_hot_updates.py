"""a generation counter for cached credentials; room on the stamp's pages for HOT updates

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 17:10:00

Each worker caches API-key lookups (``stampbook/auth.py``) so that a request
needs no database round trip to be admitted. A cache must learn of every
change to what it holds, by whatever path the change is made (the CLI, the
dashboard, a hand-written ``UPDATE``), so the database itself counts them:
``cache_generation`` holds one counter per cached kind, and triggers on
``api_key`` and ``account`` (any UPDATE or DELETE: a revocation, a new time
zone or rate limit, an account removed) add one to ``credentials`` in the
same transaction. On PostgreSQL the trigger also sends
``NOTIFY stampbook_credentials``, delivered when the change commits, so
that listening workers drop their caches at once; every worker also polls
the counter (a one-row read) several times a second, so a revocation
reaches every worker within a second even without the notification. A new
key needs no count: unknown keys are never cached.

PostgreSQL: ``stamp`` gets a fill factor of 85. An add updates two columns
that no index holds (``stamps``, ``last_add_ms``), which PostgreSQL can do
as a HOT update, writing no index entry at all, but only when the row's page
has room for the new version; on full pages every add wrote an entry in each
of the stamp's eight indexes. Only pages written from now on keep the room
(``VACUUM FULL stamp`` rewrites older ones).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "stampbook_credentials"
WATCHED = ("api_key", "account")
STAMP_FILL_FACTOR = 85

PG_FUNCTION = f"""
CREATE FUNCTION stampbook_credentials_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE cache_generation SET generation = generation + 1 WHERE name = 'credentials';
  PERFORM pg_notify('{CHANNEL}', '');
  RETURN NULL;
END
$$
"""


def upgrade() -> None:
    """The counter table, its row and triggers; the stamp's fill factor."""
    op.create_table(
        "cache_generation",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cache_generation")),
    )
    op.execute("INSERT INTO cache_generation (name, generation) VALUES ('credentials', 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table in WATCHED:
            op.execute(
                f"CREATE TRIGGER tr_{table}_credentials AFTER UPDATE OR DELETE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION stampbook_credentials_changed()"
            )
        op.execute(f"ALTER TABLE stamp SET (fillfactor = {STAMP_FILL_FACTOR})")
        return
    for table in WATCHED:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER tr_{table}_{event.lower()}_credentials AFTER {event} ON {table} "
                "BEGIN UPDATE cache_generation SET generation = generation + 1 "
                "WHERE name = 'credentials'; END"
            )


def downgrade() -> None:
    """Back to 0004."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE stamp RESET (fillfactor)")
        for table in WATCHED:
            op.execute(f"DROP TRIGGER tr_{table}_credentials ON {table}")
        op.execute("DROP FUNCTION stampbook_credentials_changed()")
    else:
        for table in WATCHED:
            for event in ("update", "delete"):
                op.execute(f"DROP TRIGGER tr_{table}_{event}_credentials")
    op.drop_table("cache_generation")
