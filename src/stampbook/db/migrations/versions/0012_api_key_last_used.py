"""when each API key was last used

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 21:20:00

The dashboard's API-key list showed the newest ledger row a key wrote as
"last used", so a key that only validates (a till that checks cards) looked
unused. ``api_key_use`` holds, per key, when it last answered a request of
any kind, written by each worker every minute from what it saw in memory
(never on a request's path). A new, empty table: instant on both databases.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``api_key_use``."""
    op.create_table(
        "api_key_use",
        sa.Column(
            "key_idx",
            Id,
            sa.ForeignKey("api_key.key_idx", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("last_used_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    """Drop ``api_key_use``."""
    op.drop_table("api_key_use")
