"""The statistics' rollups: the ledger folded, in ``event_idx`` order, up to
a watermark, so that the overview reads the rollups plus the ledger rows
after the watermark (``service.stats``) and stays exactly the ledger's
numbers whether the job has run or not (a new database: watermark 0,
everything is read live, as before the rollups).

Folding (``fold_batch``, run by ``jobs.fold_forever``): each call is one
transaction that locks the watermark row, adds a batch of ledger rows to the
rollups and moves the watermark past them, so a batch is folded once and
only once, whichever of several workers runs it, and a failed batch leaves
nothing behind.

Which rows may be folded: on PostgreSQL an ``event_idx`` is handed out when
the row is inserted, but becomes visible when its transaction commits, so a
transaction still open can commit a lower ``event_idx`` after a higher one
was folded, and the watermark would have passed it for good. The fold
therefore folds only up to ``seen_idx``, the highest row visible at
``seen_at``, once no transaction that began at or before ``seen_at`` is
still open (``pg_stat_activity``): every row at or below ``seen_idx`` then
has committed or never will. A transaction left open for long (an idle
session in a transaction, a long import) holds the watermark back, and the
overview reads more of the ledger live, exact still. SQLite has one writer
at a time: what is visible is final.

What else changes folded numbers, and corrects the rollups in its own
transaction (each takes the watermark's lock, so it never races a fold):

- deleting a stamp deletes its ledger rows (cascade): ``before_stamp_deleted``
  / ``after_stamp_deleted``;
- a stamp's userId changes (activeCustomers counts current userIds):
  ``before_user_change`` / ``after_user_change``;
- a card's maximum changes (a completion is judged against the current
  maximum): ``before_card_maximum`` / ``after_card_maximum``.

Progress (today's usable stamps by count) is kept per folded stamp in
``stats_stamp`` and counted in ``stats_progress``: every change to a stamp's
count, period, switches or card writes a ledger row, so a stamp without a
row after the watermark is as its folded copy says, and one with such a row
is read live.
"""

from __future__ import annotations

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from stampbook.db.schema import stamp_event
from stampbook.stats import rollup_repository as repo

FOLD_BATCH_ROWS = 20_000
# SQLite has one writer: a batch holds every add and remove back while it
# runs (about 30,000 rows a second here), so its batches are small enough
# to be a pause of tens of milliseconds between the writes queued behind it.
SQLITE_FOLD_BATCH_ROWS = 1_000


# Background work yields to a rush: while the ledger grows faster than this,
# a round of the job is skipped, because folding competes with the adds for
# the same CPU (and, on SQLite, for the one writer); the overview reads the
# unfolded tail live meanwhile, exact, a little slower. Past the cap the job
# folds whatever the rate, so that tail stays bounded.
YIELD_ABOVE_ROWS_PER_SECOND = 200.0
TAIL_CAP_ROWS = 100_000


class Pace:
    """How fast the ledger is growing, from one round of the job to the next."""

    def __init__(self) -> None:
        self.newest: int | None = None
        self.at = 0.0

    async def allows_fold(self, conn: AsyncConnection, now: float) -> bool:
        """True when a round should fold: no rush (the ledger grew by at most
        ``YIELD_ABOVE_ROWS_PER_SECOND`` since the last round), or a tail of
        ``TAIL_CAP_ROWS`` or more. ``now``: a monotonic clock, in seconds."""
        newest, _ = await repo.observe(conn)
        tail = newest - await repo.folded_idx(conn)
        before, since = self.newest, self.at
        self.newest, self.at = newest, now
        if before is None or now <= since:
            return True
        rate = (newest - before) / (now - since)
        return rate <= YIELD_ABOVE_ROWS_PER_SECOND or tail >= TAIL_CAP_ROWS


async def fold_batch(conn: AsyncConnection, *, rows: int = FOLD_BATCH_ROWS) -> int | None:
    """Fold up to ``rows`` settled ledger rows in this transaction. Returns
    how far the watermark moved (0: new rows were seen, to fold once settled),
    or None when nothing can be done now (nothing new, or PostgreSQL
    transactions that may still commit rows below ``seen_idx`` are open)."""
    mark = await repo.lock_watermark(conn)
    folded, seen = int(mark.folded_idx), int(mark.seen_idx)
    if folded >= seen:
        seen, seen_at = await repo.observe(conn)
        if seen <= folded:
            return None
        await repo.set_watermark(conn, seen_idx=seen, seen_at=seen_at)
        if seen_at is not None:
            return 0  # PostgreSQL: settled once the transactions open now have ended
    elif mark.seen_at is not None and await repo.open_since(conn, mark.seen_at):
        return None
    upto = await repo.batch_end(conn, after_idx=folded, upto_idx=seen, rows=rows)
    batch = [stamp_event.c.event_idx > folded, stamp_event.c.event_idx <= upto]
    await repo.fold_events(conn, batch, sign=1)
    await repo.refold_stamps(conn, select(stamp_event.c.stamp_idx).where(*batch).distinct())
    await repo.set_watermark(conn, folded_idx=upto)
    return upto - folded


async def before_stamp_deleted(conn: AsyncConnection, *, stamp_idx: int) -> None:
    """Before a stamp's deletion (which deletes its ledger rows): its folded
    rows are taken back out of the rollups."""
    mark = await repo.lock_watermark(conn)
    await repo.fold_events(conn, _stamp_rows(stamp_idx, int(mark.folded_idx)), sign=-1)


async def after_stamp_deleted(conn: AsyncConnection, *, stamp_idx: int) -> None:
    """After a stamp's deletion: its folded copy leaves progress."""
    await repo.lock_watermark(conn)
    await repo.refold_stamps(conn, select(literal(stamp_idx).label("stamp_idx")))


async def before_user_change(conn: AsyncConnection, *, stamp_idx: int) -> None:
    """Before a stamp's userId changes: its folded ADDs leave the old userId."""
    mark = await repo.lock_watermark(conn)
    await repo.fold_events(conn, _stamp_rows(stamp_idx, int(mark.folded_idx)), sign=-1)


async def after_user_change(conn: AsyncConnection, *, stamp_idx: int) -> None:
    """After a stamp's userId changed: its folded ADDs count for the new one."""
    mark = await repo.lock_watermark(conn)
    await repo.fold_events(conn, _stamp_rows(stamp_idx, int(mark.folded_idx)), sign=1)


async def before_card_maximum(conn: AsyncConnection, *, account_idx: int, card_idx: int) -> None:
    """Before a card's maximum changes: the folded rows naming it are taken
    back (their completions were judged against the old maximum)."""
    mark = await repo.lock_watermark(conn)
    rows = _card_rows(account_idx, card_idx, int(mark.folded_idx))
    await repo.fold_events(conn, rows, sign=-1)


async def after_card_maximum(conn: AsyncConnection, *, account_idx: int, card_idx: int) -> None:
    """After a card's maximum changed: the same rows folded again against it."""
    mark = await repo.lock_watermark(conn)
    rows = _card_rows(account_idx, card_idx, int(mark.folded_idx))
    await repo.fold_events(conn, rows, sign=1)


def _stamp_rows(stamp_idx: int, folded_idx: int) -> list[ColumnElement[bool]]:
    return [stamp_event.c.stamp_idx == stamp_idx, stamp_event.c.event_idx <= folded_idx]


def _card_rows(account_idx: int, card_idx: int, folded_idx: int) -> list[ColumnElement[bool]]:
    return [
        stamp_event.c.account_idx == account_idx,
        stamp_event.c.card_idx == card_idx,
        stamp_event.c.event_idx <= folded_idx,
    ]
