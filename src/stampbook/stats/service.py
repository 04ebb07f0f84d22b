"""The programme's numbers, from the ledger, and its exports.

A range is whole days in the account's time zone, both ends included; by
default the last 30 days (today and the 29 before). The definitions, over
the range's events (``stamp_event``):

- ``stampsAdded`` / ``stampsRemoved`` / ``cardsIssued`` / ``rewardsRedeemed``:
  ADD / REMOVE / CREATE / USE events;
- ``activeCustomers``: distinct userIds (each stamp's current one: the
  ledger does not copy it) with at least one ADD;
- ``cardsCompleted``: events that brought a stamp to the maximum of its card
  (an ADD or an UPDATE of the count: before below it, after not);
- ``completionRate`` = cardsCompleted ÷ cardsIssued, ``redemptionRate`` =
  rewardsRedeemed ÷ cardsCompleted, rounded to 4 places, null when the
  divisor is 0;
- ``medianDaysToComplete``: over those completions, whole days (24-hour
  periods) from the stamp's creation to the completing event; null when none;
- ``progress``: today's active, unredeemed stamps (usable today: switched on,
  in their period, not redeemed) counted by how many stamps they hold.

With ``cardIdx``, events count for the card they name: a stamp moved between
cards counts its creation for the first card and its later adds for the next.

The numbers are read from the rollups (``rollups.py``) up to their watermark
and from the ledger after it, in one snapshot: the same numbers as the
ledger alone gives.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.cards import repository as card_repo
from stampbook.kit.clock import format_ymdt, utc_naive
from stampbook.kit.context import CallContext
from stampbook.kit.db import Database
from stampbook.kit.errors import Code, StampbookError
from stampbook.stamps.views import render_stamp
from stampbook.stats import csv as stats_csv
from stampbook.stats import repository as repo
from stampbook.stats import rollup_repository as rollup_repo

DEFAULT_DAYS = 30
# The days a range may name: the ledger's arithmetic counts seconds from 1970.
EARLIEST_DAY = date(1970, 1, 2)
LATEST_DAY = date(2999, 12, 31)
MAX_STATS_DAYS = 366
EXPORT_CHUNK = 1000
# Beyond this many of an account's ledger rows after the watermark, progress
# counts the stamps (one scan) rather than correct the rollups stamp by stamp.
LIVE_PROGRESS_ROWS = 50_000


@dataclass(frozen=True, slots=True)
class DayRange:
    """Whole local days ``first``..``last`` (inclusive) and their UTC bounds."""

    first: date
    last: date
    start: datetime  # naive UTC: the first day's local midnight
    end: datetime  # naive UTC: the local midnight after the last day

    @property
    def days(self) -> list[date]:
        """Every day of the range, in order."""
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The instant ``day`` begins in ``zone``, as stored (naive UTC)."""
    return utc_naive(datetime.combine(day, time(0), tzinfo=zone))


def day_range(
    ctx: CallContext, first: date | None, last: date | None, *, max_days: int | None
) -> DayRange:
    """The range a request names: ``last`` defaults to today and ``first`` to
    29 days before ``last``. 1001 naming ``from`` when it is after ``to``, or
    ``to`` when the range is longer than ``max_days``, or either outside
    1970-01-02..2999-12-31."""
    for name, value in (("from", first), ("to", last)):
        if value is not None and not EARLIEST_DAY <= value <= LATEST_DAY:
            raise StampbookError(Code.INVALID_PARAMETER, param=name)
    last = last or ctx.today
    first = first or max(last - timedelta(days=DEFAULT_DAYS - 1), EARLIEST_DAY)
    if first > last:
        raise StampbookError(Code.INVALID_PARAMETER, param="from")
    if max_days is not None and (last - first).days + 1 > max_days:
        raise StampbookError(Code.INVALID_PARAMETER, param="to")
    return DayRange(
        first,
        last,
        local_midnight(first, ctx.zone),
        local_midnight(last + timedelta(days=1), ctx.zone),
    )


def _ratio(numerator: int, divisor: int) -> float | None:
    return None if divisor == 0 else round(numerator / divisor, 4)


def median_of_counts(counts: Sequence[tuple[int, int]]) -> float | None:
    """The median of values given as (value, how many) pairs; None when empty."""
    ordered = sorted((value, n) for value, n in counts if n > 0)
    total = sum(n for _, n in ordered)
    if total == 0:
        return None
    wanted = sorted({(total - 1) // 2, total // 2})
    found: list[int] = []
    seen = 0
    for value, n in ordered:
        while wanted and wanted[0] < seen + n:
            found.append(value)
            wanted.pop(0)
        seen += n
    return sum(found) / len(found)


async def _check_card(conn: AsyncConnection, ctx: CallContext, card_idx: int | None) -> None:
    if card_idx is not None:
        found = await card_repo.get(conn, account_idx=ctx.account_idx, card_idx=card_idx)
        if found is None:
            raise StampbookError(Code.CARD_NOT_FOUND)


def _slots(days: DayRange) -> tuple[int, int] | None:
    """The range's slots (first, after last) when its bounds are whole slots
    (local midnights of every zone in use today are), else None: the rollups
    cannot split a slot, and such a range is read live."""
    epoch = datetime(1970, 1, 1)
    bounds = [int((moment - epoch).total_seconds()) for moment in (days.start, days.end)]
    if any(bound % repo.SLOT_SECONDS for bound in bounds):
        return None
    return bounds[0] // repo.SLOT_SECONDS, bounds[1] // repo.SLOT_SECONDS


async def _progress(
    conn: AsyncConnection, ctx: CallContext, *, card_idx: int | None, folded_idx: int
) -> Sequence[Any]:
    """Today's usable stamps by count: from the rollups, unless so much of the
    account's ledger is after the watermark (a database not folded yet) that
    counting the stamps themselves is quicker; the same numbers either way."""
    scope: dict[str, Any] = {"account_idx": ctx.account_idx, "today": ctx.today}
    if folded_idx and not await rollup_repo.tail_is_longer(
        conn, account_idx=ctx.account_idx, folded_idx=folded_idx, rows=LIVE_PROGRESS_ROWS
    ):
        return await rollup_repo.progress(conn, card_idx=card_idx, folded_idx=folded_idx, **scope)
    return await repo.progress(conn, card_idx=card_idx, **scope)


async def stats(
    conn: AsyncConnection,
    ctx: CallContext,
    *,
    first: date | None,
    last: date | None,
    card_idx: int | None,
) -> dict[str, Any]:
    """The stats result for a range (see the module's definitions), fields in
    the documented order; 2101 when ``card_idx`` is not one of the account's cards."""
    days = day_range(ctx, first, last, max_days=MAX_STATS_DAYS)
    await _check_card(conn, ctx, card_idx)
    scope: dict[str, Any] = {
        "account_idx": ctx.account_idx,
        "start": days.start,
        "end": days.end,
        "card_idx": card_idx,
    }
    names = ("stampsAdded", "stampsRemoved", "cardsIssued", "cardsCompleted", "rewardsRedeemed")
    daily = {day: dict.fromkeys(names, 0) for day in days.days}
    async with repo.roomy_sorts(conn), repo.one_snapshot(conn):
        folded = await rollup_repo.folded_idx(conn)
        slots = _slots(days) if folded else None
        live = {**scope, "folded_idx": folded if slots else 0}
        rows = list(await repo.slot_counts(conn, **live))
        ages = Counter[int]()
        for row in await repo.completion_ages(conn, **live):
            ages[int(row.days)] += int(row.completions)
        folded_scope: dict[str, Any] = {"account_idx": ctx.account_idx, "card_idx": card_idx}
        if slots:
            rows += await rollup_repo.folded_slot_counts(conn, slots=slots, **folded_scope)
            for row in await rollup_repo.folded_completion_ages(conn, slots=slots, **folded_scope):
                ages[int(row.days)] += int(row.completions)
            customers = await rollup_repo.active_customers(conn, slots=slots, **live)
        else:
            customers = await repo.active_customers(conn, **scope)
        for row in rows:
            moment = datetime.fromtimestamp(int(row.slot) * repo.SLOT_SECONDS, UTC)
            counts = daily[moment.astimezone(ctx.zone).date()]
            counts["stampsAdded"] += int(row.add)
            counts["stampsRemoved"] += int(row.remove)
            counts["cardsIssued"] += int(row.create)
            counts["cardsCompleted"] += int(row.completed)
            counts["rewardsRedeemed"] += int(row.use)
        total = {name: sum(day[name] for day in daily.values()) for name in names}
        histogram = await _progress(conn, ctx, card_idx=card_idx, folded_idx=live["folded_idx"])
    return {
        "from": days.first.isoformat(),
        "to": days.last.isoformat(),
        "cardIdx": card_idx,
        "totals": {
            "stampsAdded": total["stampsAdded"],
            "stampsRemoved": total["stampsRemoved"],
            "cardsIssued": total["cardsIssued"],
            "activeCustomers": customers,
            "cardsCompleted": total["cardsCompleted"],
            "rewardsRedeemed": total["rewardsRedeemed"],
            "completionRate": _ratio(total["cardsCompleted"], total["cardsIssued"]),
            "redemptionRate": _ratio(total["rewardsRedeemed"], total["cardsCompleted"]),
            "medianDaysToComplete": median_of_counts(
                [(days, completions) for days, completions in ages.items()]
            ),
        },
        "daily": [{"date": day.isoformat(), **counts} for day, counts in daily.items()],
        "progress": [{"stamps": int(row.stamps), "count": int(row.holders)} for row in histogram],
    }


EXPORT_KINDS = ("stamps", "events")


@dataclass(frozen=True, slots=True)
class Export:
    """A CSV ready to stream: its file name and its body, chunk by chunk."""

    filename: str
    chunks: AsyncIterator[bytes]


def export(
    db: Database, ctx: CallContext, *, kind: str, first: date | None, last: date | None
) -> Export:
    """The ``kind`` CSV (stamps created in the range, or the range's ledger),
    oldest first. The range is checked now (1001 naming ``from``, ``to`` or
    ``kind``); the rows are read a chunk at a time as the body is sent, each
    chunk its own short read, so an export holds no transaction open."""
    if kind not in EXPORT_KINDS:
        raise StampbookError(Code.INVALID_PARAMETER, param="kind")
    days = day_range(ctx, first, last, max_days=None)
    name = f"{kind}-{days.first.isoformat()}-{days.last.isoformat()}.csv"
    if kind == "stamps":
        header, fetch, render = stats_csv.STAMP_HEADER, repo.stamps_after, _stamp_cells(ctx)
        idx_of: Callable[[Any], int] = lambda row: int(row.stamp_idx)  # noqa: E731
    else:
        header, fetch, render = stats_csv.EVENT_HEADER, repo.events_after, _event_cells(ctx)
        idx_of = lambda row: int(row.event_idx)  # noqa: E731

    async def rows() -> AsyncIterator[list[Any]]:
        after = 0
        while True:
            async with db.read() as conn:
                chunk = await fetch(
                    conn,
                    account_idx=ctx.account_idx,
                    start=days.start,
                    end=days.end,
                    after_idx=after,
                    limit=EXPORT_CHUNK,
                )
            for row in chunk:
                yield render(row)
            if len(chunk) < EXPORT_CHUNK:
                return
            after = idx_of(chunk[-1])

    return Export(name, stats_csv.encode(header, rows()))


def _stamp_cells(ctx: CallContext) -> Callable[[Any], list[Any]]:
    def cells(row: Any) -> list[Any]:
        return list(render_stamp(row, public_url=ctx.public_url, zone=ctx.zone).values())

    return cells


def _event_cells(ctx: CallContext) -> Callable[[Any], list[Any]]:
    def cells(row: Any) -> list[Any]:
        return [
            row.event_idx,
            row.stamp_idx,
            row.card_idx,
            row.user_id,
            row.action,
            row.stamps_before,
            row.stamps_after,
            row.source,
            format_ymdt(row.reg_ymdt, ctx.zone),
        ]

    return cells
