"""dashboard at scale: the ledger by time, customer search by trigram

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 17:10:00

The dashboard's overview (``GET /stats``) reads one account's ledger over a
range of days, and its Customers page searches the account's stamps for a
fragment of a userId, name, phone or email (``stamps/search.py``). With
1,000,000 stamps and 10,000,000 ledger rows in one account (``make bench``'s
dashboard scenario):

- ``ix_stamp_event_account_time`` (account_idx, reg_ymdt, then the columns
  the statistics read) finds a range's rows without reading the account's
  whole ledger, and reads them from the index alone (keys rather than
  PostgreSQL's INCLUDE, so that both databases have the same index). It is
  one more index entry per ledger row written.
- ``ix_stamp_search`` (PostgreSQL only): a trigram (``pg_trgm``) GIN index on
  the searched text, so that ``LIKE '%fragment%'`` finds the few matching
  stamps instead of scanning them all. Its expression must stay the one
  ``stamps.search.SEARCHED_TEXT_SQL`` builds. On SQLite a search scans the
  account's stamps (100,000 in a few tens of milliseconds).

Neither indexes a column an add or remove changes: the add's UPDATE stays a
heap-only (HOT) update on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEDGER_COLUMNS = ["action", "card_idx", "stamps_before", "stamps_after", "stamp_idx"]
SEPARATOR = "\x1f"
SEARCHED_TEXT = "lower({})".format(
    f" || '{SEPARATOR}' || ".join(
        f"coalesce(stamp.{name}, '')" for name in ("user_id", "user_nm", "user_phnno", "user_eml")
    )
)


def upgrade() -> None:
    """The ledger's time index; on PostgreSQL the search's trigram index."""
    op.create_index(
        "ix_stamp_event_account_time",
        "stamp_event",
        ["account_idx", "reg_ymdt", *LEDGER_COLUMNS],
        unique=False,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            f"CREATE INDEX ix_stamp_search ON stamp USING gin (({SEARCHED_TEXT}) gin_trgm_ops)"
        )


def downgrade() -> None:
    """Back to 0004's indexes (the pg_trgm extension stays: others may use it)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_stamp_search")
    op.drop_index("ix_stamp_event_account_time", table_name="stamp_event")
