"""dashboard users, their sessions, the account's display settings, who acted

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-04 17:10:00

The merchant dashboard (#14) signs people in, separately from API keys:

- ``dashboard_user``: one row per person of an account (email unique over the
  server, argon2id hash, role ``owner`` or ``staff``, disabled when
  ``disabled_at`` is set).
- ``dashboard_session``: sessions live in the database so that logout, a
  password change and disabling a user end them on every worker. Only a
  SHA-256 of the cookie's secret is stored.
- ``account.display_name`` and ``account.logo_url``: what the customer's stamp
  page shows instead of the product name.
- ``stamp_event.user_idx``: the dashboard user behind a ledger row (source
  ``DASHBOARD``); NULL for every other source. No foreign key: a ledger row
  outlives nothing it names, and users are disabled, never deleted.

Login failures are counted in ``onsite_lockout`` (scopes ``login_email`` and
``login_address``), the table and code that already count guesses.
All changes only add: plain ``ADD COLUMN`` on SQLite, no table rebuild.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from stampbook.db.sequences import sequence_kept

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Add the users and sessions tables and the new columns."""
    op.create_table(
        "dashboard_user",
        sa.Column("user_idx", Id, autoincrement=True, nullable=False),
        sa.Column("account_idx", Id, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_idx"],
            ["account.account_idx"],
            name=op.f("fk_dashboard_user_account_idx_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_idx", name=op.f("pk_dashboard_user")),
        sa.UniqueConstraint("email", name=op.f("uq_dashboard_user_email")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_dashboard_user_account_idx"), "dashboard_user", ["account_idx"], unique=False
    )
    op.create_table(
        "dashboard_session",
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("user_idx", Id, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_idx"],
            ["dashboard_user.user_idx"],
            name=op.f("fk_dashboard_session_user_idx_dashboard_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_hash", name=op.f("pk_dashboard_session")),
    )
    op.create_index(
        op.f("ix_dashboard_session_user_idx"), "dashboard_session", ["user_idx"], unique=False
    )
    op.add_column("account", sa.Column("display_name", sa.String(length=200), nullable=True))
    op.add_column("account", sa.Column("logo_url", sa.String(length=2000), nullable=True))
    op.add_column("stamp_event", sa.Column("user_idx", Id, nullable=True))


def downgrade() -> None:
    """Drop what upgrade added."""
    # SQLite rebuilds these tables: they stay AUTOINCREMENT and keep their counters.
    with (
        sequence_kept("stamp_event"),
        op.batch_alter_table("stamp_event", table_kwargs={"sqlite_autoincrement": True}) as batch,
    ):
        batch.drop_column("user_idx")
    with (
        sequence_kept("account"),
        op.batch_alter_table("account", table_kwargs={"sqlite_autoincrement": True}) as batch,
    ):
        batch.drop_column("logo_url")
        batch.drop_column("display_name")
    op.drop_index(op.f("ix_dashboard_session_user_idx"), table_name="dashboard_session")
    op.drop_table("dashboard_session")
    op.drop_index(op.f("ix_dashboard_user_account_idx"), table_name="dashboard_user")
    op.drop_table("dashboard_user")
