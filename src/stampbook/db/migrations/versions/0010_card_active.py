"""a card can be deactivated

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 18:20:00

- ``card.active_yn``: 'N' stops the card issuing new stamps (2105
  CARD_INACTIVE for the API, receipt codes' "Get a card" and the dashboard);
  stamps already issued on it keep working. Every existing card stays active
  through the default, so no row is rewritten: instant on both databases.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from stampbook.db.sequences import sequence_kept

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``card.active_yn``, 'Y' for every card."""
    op.add_column(
        "card", sa.Column("active_yn", sa.String(length=1), server_default="Y", nullable=False)
    )


def downgrade() -> None:
    """Drop ``card.active_yn``."""
    # SQLite rebuilds the table: keep its AUTOINCREMENT and ids never reused.
    with (
        sequence_kept("card"),
        op.batch_alter_table("card", table_kwargs={"sqlite_autoincrement": True}) as batch,
    ):
        batch.drop_column("active_yn")
