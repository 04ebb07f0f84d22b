"""The statistics' rollups (0011): the ledger folded by a periodic job
(``stats/rollups.py``), so that the overview of a large account reads a few
thousand rows instead of hundreds of thousands.

Defined on the one ``schema.metadata`` (``schema`` imports this module last).
Every count is a sum the fold adds to (``INSERT … ON CONFLICT DO UPDATE``) and
a stamp's deletion, a userId's change or a card's new maximum subtracts from,
so a row may hold 0. Keys start with the account and the UTC 15-minute slot
(seconds since 1970 // 900), the order the overview reads them in.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
)

from stampbook.db.schema import Id, metadata


def _account() -> Column[int]:
    # Deleting an account deletes its rollups, as it deletes its ledger.
    return Column(
        "account_idx",
        Id,
        ForeignKey("account.account_idx", ondelete="CASCADE"),
        primary_key=True,
    )


# One row: the ledger is folded up to ``folded_idx`` (every event_idx at or
# below it is in the rollups, none above). ``seen_idx`` / ``seen_at``: the
# highest event_idx visible at ``seen_at`` (database clock), the next
# watermark once every transaction open at ``seen_at`` has ended.
stats_fold = Table(
    "stats_fold",
    metadata,
    Column("fold_id", Integer, primary_key=True, autoincrement=False),
    Column("folded_idx", BigInteger, nullable=False, server_default="0"),
    Column("seen_idx", BigInteger, nullable=False, server_default="0"),
    Column("seen_at", DateTime, nullable=True),
)

# Per account, slot and card (the card the event names): the events by
# action, and the completions (``stats.repository.completes_event``).
stats_slot = Table(
    "stats_slot",
    metadata,
    _account(),
    Column("slot", BigInteger, primary_key=True, autoincrement=False),
    Column("card_idx", Id, primary_key=True, autoincrement=False),
    Column("n_add", Integer, nullable=False),
    Column("n_remove", Integer, nullable=False),
    Column("n_create", Integer, nullable=False),
    Column("n_use", Integer, nullable=False),
    Column("n_completed", Integer, nullable=False),
)

# The completions by whole days from their stamp's creation.
stats_age = Table(
    "stats_age",
    metadata,
    _account(),
    Column("slot", BigInteger, primary_key=True, autoincrement=False),
    Column("card_idx", Id, primary_key=True, autoincrement=False),
    Column("days", Integer, primary_key=True, autoincrement=False),
    Column("completions", Integer, nullable=False),
)

# The ADDs per slot, card and (current) userId of their stamp; a row whose
# count falls to 0 is deleted. Each row also names the slot of the userId's
# row before it (-1: none), over all cards (rows in slot, card order:
# ``prev_any``) and on its card (``prev_card``): the distinct userIds of a
# range of slots [a, b) are then the range's rows with ``prev_any < a`` (with
# a card: ``prev_card < a``), one per userId, counted from an index alone.
stats_active = Table(
    "stats_active",
    metadata,
    _account(),
    Column("user_id", String(100), primary_key=True),
    Column("slot", BigInteger, primary_key=True, autoincrement=False),
    Column("card_idx", Id, primary_key=True, autoincrement=False),
    Column("adds", Integer, nullable=False),
    Column("prev_any", BigInteger, nullable=False, server_default="-1"),
    Column("prev_card", BigInteger, nullable=False, server_default="-1"),
    Index("ix_stats_active_range", "account_idx", "slot", "prev_any", "card_idx", "prev_card"),
)

# Each folded stamp as the fold last read it (the columns progress needs);
# no foreign key to the stamp: a deletion subtracts the row's count first.
stats_stamp = Table(
    "stats_stamp",
    metadata,
    Column("stamp_idx", Id, primary_key=True, autoincrement=False),
    Column(
        "account_idx",
        Id,
        ForeignKey("account.account_idx", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("card_idx", Id, nullable=False),
    Column("stamps", Integer, nullable=False),
    Column("strt_ymd", Date, nullable=False),
    Column("end_ymd", Date, nullable=False),
    Column("active_yn", String(1), nullable=False),
    Column("use_yn", String(1), nullable=False),
)

# ``stats_stamp`` counted by everything progress filters and groups on.
stats_progress = Table(
    "stats_progress",
    metadata,
    _account(),
    Column("card_idx", Id, primary_key=True, autoincrement=False),
    Column("stamps", Integer, primary_key=True, autoincrement=False),
    Column("strt_ymd", Date, primary_key=True),
    Column("end_ymd", Date, primary_key=True),
    Column("active_yn", String(1), primary_key=True),
    Column("use_yn", String(1), primary_key=True),
    Column("holders", Integer, nullable=False),
)
