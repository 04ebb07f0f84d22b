"""wallet passes: passes, Apple device registrations, the wallet outbox

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-04 17:00:00

Apple Wallet and Google Wallet passes (issue 16, docs/wallet.md). A pass per
stamp (opaque serial, its web-service token), the devices registered for its
updates, and the jobs (one APNs push per device, one Google object update per
pass) that a change queues in its own transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``wallet_pass``, ``wallet_registration`` and ``wallet_job``."""
    op.create_table(
        "wallet_pass",
        sa.Column("pass_idx", Id, autoincrement=True, nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("auth_token", sa.String(length=64), nullable=False),
        sa.Column("stamp_idx", Id, nullable=False),
        sa.Column("account_idx", Id, nullable=False),
        sa.Column("google_yn", sa.String(length=1), server_default="N", nullable=False),
        sa.Column("voided_yn", sa.String(length=1), server_default="N", nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pass_idx", name=op.f("pk_wallet_pass")),
        sa.UniqueConstraint("serial", name=op.f("uq_wallet_pass_serial")),
        sa.UniqueConstraint("stamp_idx", name=op.f("uq_wallet_pass_stamp_idx")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "wallet_registration",
        sa.Column("registration_idx", Id, autoincrement=True, nullable=False),
        sa.Column("pass_idx", Id, nullable=False),
        sa.Column("device_id", sa.String(length=200), nullable=False),
        sa.Column("push_token", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pass_idx"],
            ["wallet_pass.pass_idx"],
            name=op.f("fk_wallet_registration_pass_idx_wallet_pass"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("registration_idx", name=op.f("pk_wallet_registration")),
        sa.UniqueConstraint("pass_idx", "device_id", name=op.f("uq_wallet_registration_pass_idx")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_wallet_registration_device", "wallet_registration", ["device_id", "pass_idx"]
    )
    op.create_table(
        "wallet_job",
        sa.Column("job_idx", Id, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("pass_idx", Id, nullable=False),
        sa.Column("registration_idx", Id, nullable=True),
        sa.Column("status", sa.String(length=10), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("locked_by", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pass_idx"],
            ["wallet_pass.pass_idx"],
            name=op.f("fk_wallet_job_pass_idx_wallet_pass"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["registration_idx"],
            ["wallet_registration.registration_idx"],
            name=op.f("fk_wallet_job_registration_idx_wallet_registration"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_idx", name=op.f("pk_wallet_job")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_wallet_job_due", "wallet_job", ["kind", "status", "next_attempt_at"])
    op.create_index("ix_wallet_job_pass", "wallet_job", ["pass_idx"])
    op.create_index("ix_wallet_job_registration", "wallet_job", ["registration_idx"])


def downgrade() -> None:
    """Drop the wallet tables (passes already on phones stop updating)."""
    op.drop_table("wallet_job")
    op.drop_table("wallet_registration")
    op.drop_table("wallet_pass")
