"""on-site password failures counted per card and per client address

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 11:00:00

Round 1 counted wrong on-site passwords on each stamp, while the password is
the card's: N stamp links gave 5 x N guesses per lock, and anonymous guesses
on the page locked the merchant's own API ``redeem``. The counters move to a
table of their own, one row per (scope, subject): the page's per card and per
client address, and the API's per card, never shared with the page's. The
stamp's two counter columns go (a lock in force when upgrading is forgotten:
at most one lock period of guesses is regained).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from stampbook.db.sequences import sequence_kept

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``onsite_lockout``; drop the stamp's own counter columns."""
    op.create_table(
        "onsite_lockout",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=True),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("scope", "subject", name=op.f("pk_onsite_lockout")),
    )
    # SQLite rebuilds the table (batch mode); it must stay AUTOINCREMENT (0002)
    # and keep its counter (stampbook.db.sequences).
    with (
        sequence_kept("stamp"),
        op.batch_alter_table("stamp", table_kwargs={"sqlite_autoincrement": True}) as batch,
    ):
        batch.drop_column("onsite_locked_until")
        batch.drop_column("onsite_failures")


def downgrade() -> None:
    """Put the stamp's counter columns back (empty) and drop ``onsite_lockout``."""
    with (
        sequence_kept("stamp"),
        op.batch_alter_table("stamp", table_kwargs={"sqlite_autoincrement": True}) as batch,
    ):
        batch.add_column(
            sa.Column("onsite_failures", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("onsite_locked_until", sa.DateTime(), nullable=True))
    op.drop_table("onsite_lockout")
