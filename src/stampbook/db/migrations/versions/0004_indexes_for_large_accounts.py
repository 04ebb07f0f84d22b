"""indexes for large accounts: list filters, newest first, and history

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:00:00

``make bench``'s scale scenario (1,000,000 stamps and 5,000,000 ledger rows
in one account) showed calls whose cost grew with the account:

- ``list`` newest first: SQLite read every stamp of the account through
  ``ix_stamp_account_card`` and sorted them; ``ix_stamp_account``
  (account_idx, stamp_idx) walks the newest directly.
- ``list?activeYn=…`` and ``list?useYn=…``: both databases walked the ids
  downwards, filtering, until a page matched (all of them when the rare value
  sits among the oldest stamps); ``ix_stamp_account_active`` and
  ``ix_stamp_account_use`` (account_idx, flag, stamp_idx) find the page.
- ``history``: SQLite, without statistics, preferred ``ix_stamp_event_account``
  (it satisfies the ORDER BY) and scanned the whole account's ledger;
  ``ix_stamp_event_stamp`` gains ``account_idx`` (stamp_idx, account_idx,
  event_idx) so that both equalities are in one index. Lookups by stamp alone
  (delete's cascade) still use its first column.

No column an add, remove or validate changes is indexed: they write no more
index entries than before. Building these locks writes to ``stamp`` and
``stamp_event`` for a few seconds per million rows on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAMP_INDEXES = {
    "ix_stamp_account": ["account_idx", "stamp_idx"],
    "ix_stamp_account_active": ["account_idx", "active_yn", "stamp_idx"],
    "ix_stamp_account_use": ["account_idx", "use_yn", "stamp_idx"],
}


def upgrade() -> None:
    """Add the list indexes; widen the history index with the account."""
    for name, columns in STAMP_INDEXES.items():
        op.create_index(name, "stamp", columns, unique=False)
    op.drop_index("ix_stamp_event_stamp", table_name="stamp_event")
    op.create_index(
        "ix_stamp_event_stamp",
        "stamp_event",
        ["stamp_idx", "account_idx", "event_idx"],
        unique=False,
    )


def downgrade() -> None:
    """Back to 0003's indexes."""
    op.drop_index("ix_stamp_event_stamp", table_name="stamp_event")
    op.create_index("ix_stamp_event_stamp", "stamp_event", ["stamp_idx", "event_idx"], unique=False)
    for name in STAMP_INDEXES:
        op.drop_index(name, table_name="stamp")
