"""receipt codes, the next cycle and daily limits

Revision ID: 0009
Revises: 0005, 0007
Create Date: 2026-12-04 17:00:00

- ``stamp_code``: single-use receipt and till codes, stored only as their
  SHA-256 (codes/).
- ``card.auto_renew_yn``: a redemption issues the customer's next stamp;
  ``stamp.next_stamp_idx`` names it.
- ``card.max_adds_per_day`` and ``card.suspicious_adds_per_day``, with the
  stamp's per-day counter ``stamp.day_ymd``/``stamp.day_adds`` that the add's
  own conditional UPDATE checks and keeps (no extra query per add).
- ``stamp_event.code_idx``: the code a CODE change claimed.

Every new column has a default (or is nullable), so existing rows need no
rewrite; adding them is instant on PostgreSQL and SQLite alike. The add now
also sets ``day_ymd`` and ``day_adds``; neither is indexed, so PostgreSQL's
HOT updates (0005's fill factor) still apply to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from stampbook.db.sequences import sequence_kept

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_CARD: tuple[sa.Column[Any], ...] = (
    sa.Column("auto_renew_yn", sa.String(length=1), server_default="N", nullable=False),
    sa.Column("max_adds_per_day", sa.Integer(), server_default="0", nullable=False),
    sa.Column("suspicious_adds_per_day", sa.Integer(), server_default="0", nullable=False),
)
_STAMP: tuple[sa.Column[Any], ...] = (
    sa.Column("day_ymd", sa.Date(), nullable=True),
    sa.Column("day_adds", sa.Integer(), server_default="0", nullable=False),
    sa.Column("next_stamp_idx", Id, nullable=True),
)


def upgrade() -> None:
    """Add the code table and the new columns."""
    for column in _CARD:
        op.add_column("card", column)
    for column in _STAMP:
        op.add_column("stamp", column)
    op.add_column("stamp_event", sa.Column("code_idx", Id, nullable=True))
    op.create_table(
        "stamp_code",
        sa.Column("code_idx", Id, autoincrement=True, nullable=False),
        sa.Column("account_idx", Id, nullable=False),
        sa.Column("card_idx", Id, nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("stamps", sa.Integer(), nullable=False),
        sa.Column("memo", sa.String(length=1000), nullable=True),
        sa.Column("key_idx", Id, nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("reg_ymdt", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("used_stamp_idx", Id, nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_idx"],
            ["account.account_idx"],
            name=op.f("fk_stamp_code_account_idx_account"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["card_idx"],
            ["card.card_idx"],
            name=op.f("fk_stamp_code_card_idx_card"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("code_idx", name=op.f("pk_stamp_code")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_stamp_code_code_hash")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_stamp_code_account", "stamp_code", ["account_idx", "code_idx"])
    op.create_index(op.f("ix_stamp_code_card_idx"), "stamp_code", ["card_idx"])


def downgrade() -> None:
    """Back to 0004: the code table and the new columns go."""
    op.drop_index(op.f("ix_stamp_code_card_idx"), table_name="stamp_code")
    op.drop_index("ix_stamp_code_account", table_name="stamp_code")
    op.drop_table("stamp_code")
    for table, columns in (
        ("stamp_event", ("code_idx",)),
        ("stamp", tuple(column.name for column in _STAMP)),
        ("card", tuple(column.name for column in _CARD)),
    ):
        with (
            sequence_kept(table),
            op.batch_alter_table(table, table_kwargs={"sqlite_autoincrement": True}) as batch,
        ):
            for name in columns:
                batch.drop_column(name)
