"""statistics rollups: the ledger folded per 15-minute slot

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 20:30:00

The overview of a large account (``GET /stats``, the dashboard's Overview)
aggregated hundreds of thousands of ledger rows and a million stamps on every
call. A periodic job (``stats/rollups.py``, run by ``serve`` and ``worker``)
now folds the ledger into these tables up to a watermark; the overview reads
them plus the ledger rows after the watermark, live, so its numbers stay
exactly the ledger's (``docs/dashboard.md``). New tables only, created empty:
instant on both databases; the first folds catch up in batches.

- ``stats_fold``: the watermark (one row, ``fold_id`` 1);
- ``stats_slot``, ``stats_age``, ``stats_active``: per account, UTC slot and
  card, the counts, completion ages and adding userIds (each with the slot
  of the userId's previous row, so that a range's distinct userIds are
  counted from ``ix_stats_active_range`` alone);
- ``stats_stamp``, ``stats_progress``: each folded stamp's progress columns,
  and their counts.

The ledger and the stamp table are untouched: no index is added to either,
so an add's UPDATE stays heap-only (HOT) on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("stats_progress", "stats_stamp", "stats_active", "stats_age", "stats_slot", "stats_fold")
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _account() -> sa.Column[int]:
    return sa.Column(
        "account_idx",
        Id,
        sa.ForeignKey("account.account_idx", ondelete="CASCADE"),
        primary_key=True,
    )


def _key(name: str, kind: sa.types.TypeEngine[Any] = Id) -> sa.Column[Any]:
    return sa.Column(name, kind, primary_key=True, autoincrement=False)


def _count(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False)


def upgrade() -> None:
    """Create the rollup tables, empty, and the watermark at 0 (nothing folded)."""
    fold = op.create_table(
        "stats_fold",
        sa.Column("fold_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("folded_idx", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("seen_idx", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("seen_at", sa.DateTime(), nullable=True),
    )
    op.bulk_insert(fold, [{"fold_id": 1, "folded_idx": 0, "seen_idx": 0}])
    op.create_table(
        "stats_slot",
        _account(),
        _key("slot", sa.BigInteger()),
        _key("card_idx"),
        *(_count(name) for name in ("n_add", "n_remove", "n_create", "n_use", "n_completed")),
    )
    op.create_table(
        "stats_age",
        _account(),
        _key("slot", sa.BigInteger()),
        _key("card_idx"),
        _key("days", sa.Integer()),
        _count("completions"),
    )
    op.create_table(
        "stats_active",
        _account(),
        sa.Column("user_id", sa.String(length=100), primary_key=True),
        _key("slot", sa.BigInteger()),
        _key("card_idx"),
        _count("adds"),
        sa.Column("prev_any", sa.BigInteger(), nullable=False, server_default="-1"),
        sa.Column("prev_card", sa.BigInteger(), nullable=False, server_default="-1"),
    )
    op.create_index(
        "ix_stats_active_range",
        "stats_active",
        ["account_idx", "slot", "prev_any", "card_idx", "prev_card"],
    )
    op.create_table(
        "stats_stamp",
        sa.Column("stamp_idx", Id, primary_key=True, autoincrement=False),
        sa.Column(
            "account_idx",
            Id,
            sa.ForeignKey("account.account_idx", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("card_idx", Id, nullable=False),
        _count("stamps"),
        sa.Column("strt_ymd", sa.Date(), nullable=False),
        sa.Column("end_ymd", sa.Date(), nullable=False),
        sa.Column("active_yn", sa.String(length=1), nullable=False),
        sa.Column("use_yn", sa.String(length=1), nullable=False),
    )
    op.create_table(
        "stats_progress",
        _account(),
        _key("card_idx"),
        _key("stamps", sa.Integer()),
        sa.Column("strt_ymd", sa.Date(), primary_key=True),
        sa.Column("end_ymd", sa.Date(), primary_key=True),
        sa.Column("active_yn", sa.String(length=1), primary_key=True),
        sa.Column("use_yn", sa.String(length=1), primary_key=True),
        _count("holders"),
    )


def downgrade() -> None:
    """Drop the rollups (the ledger keeps every number)."""
    for name in TABLES:
        op.drop_table(name)
