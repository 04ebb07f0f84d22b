"""Overview (the programme's numbers for a range of days, from the ledger,
through ``stats.service.stats``: the same numbers as ``GET /stats``) and
Export (owner only: the two CSVs of ``stats.service.export``, streamed)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response, StreamingResponse

from stampbook.dashboard import charts
from stampbook.dashboard.customers_pages import card_choices
from stampbook.dashboard.forms import read
from stampbook.dashboard.web import PREFIX, DashRoute, Desk, NotFound, require
from stampbook.kit.context import CallContext
from stampbook.kit.errors import StampbookError
from stampbook.kit.params import YMD_PATTERN, strict_decimal
from stampbook.stats import service as stats

router = APIRouter(route_class=DashRoute, include_in_schema=False, tags=["dashboard"])


def _day(value: str) -> date | None:
    """A YYYY-MM-DD field; None when empty or not a real date (the default applies)."""
    if not YMD_PATTERN.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _card(value: str) -> int | None:
    try:
        return strict_decimal(value) if value else None
    except ValueError:
        return None


def _every_count(progress: list[dict[str, int]]) -> list[tuple[str, int]]:
    """The progress histogram's bars from 0 stamps to the most held, zeros included."""
    held = {bar["stamps"]: bar["count"] for bar in progress}
    return [(str(n), held.get(n, 0)) for n in range(max(held, default=-1) + 1)]


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


@router.api_route(f"{PREFIX}/overview", methods=["GET", "HEAD"])
async def overview(request: Request, desk: Desk = Depends(require("staff"))) -> Response:
    """The programme's numbers for a range (default the last 30 days), optionally one card."""
    params = request.query_params
    first, last = _day(params.get("from", "")), _day(params.get("to", ""))
    card_idx = _card(params.get("card", ""))

    async def work(conn: AsyncConnection, ctx: CallContext) -> tuple[Any, list[dict[str, Any]]]:
        choices = await card_choices(conn, ctx)
        try:
            result = await stats.stats(conn, ctx, first=first, last=last, card_idx=card_idx)
            return result, choices
        except StampbookError as refusal:  # a range out of bounds, another account's card
            return refusal, choices

    result, choices = await read(desk, work)
    error = None
    if isinstance(result, StampbookError):
        error = result.message(desk.lang)
        result = await read(
            desk, lambda conn, ctx: stats.stats(conn, ctx, first=None, last=None, card_idx=None)
        )
    daily = result["daily"]
    totals = result["totals"]
    return desk.render(
        "overview.html",
        error=error,
        result=result,
        totals=totals,
        daily=daily,
        cards=choices,
        card_idx=result["cardIdx"],
        completion=_percent(totals["completionRate"]),
        redemption=_percent(totals["redemptionRate"]),
        added_chart=charts.bars([(d["date"], d["stampsAdded"]) for d in daily]),
        issued_chart=charts.bars([(d["date"], d["cardsIssued"]) for d in daily]),
        removed_chart=charts.bars([(d["date"], d["stampsRemoved"]) for d in daily]),
        progress_chart=charts.bars(_every_count(result["progress"])),
    )


@router.api_route(f"{PREFIX}/export", methods=["GET", "HEAD"])
async def export_page(desk: Desk = Depends(require("owner"))) -> Response:
    """The two CSV downloads, for a range of days (owner only)."""
    ctx = desk.context()
    days = stats.day_range(ctx, None, None, max_days=None)
    return desk.render("export.html", first=days.first.isoformat(), last=days.last.isoformat())


@router.api_route(f"{PREFIX}/export/{{kind}}.csv", methods=["GET", "HEAD"])
async def export_file(
    request: Request, kind: str, desk: Desk = Depends(require("owner"))
) -> Response:
    """The stamps or the ledger of a range as CSV, streamed (owner only)."""
    if kind not in stats.EXPORT_KINDS:
        raise NotFound
    params = request.query_params
    first, last = _day(params.get("from", "")), _day(params.get("to", ""))
    try:
        made = stats.export(desk.runtime.db, desk.context(), kind=kind, first=first, last=last)
    except StampbookError as refusal:  # from after to, or a day out of bounds
        ctx = desk.context()
        days = stats.day_range(ctx, None, None, max_days=None)
        return desk.render(
            "export.html",
            status=400,
            error=refusal.message(desk.lang),
            first=days.first.isoformat(),
            last=days.last.isoformat(),
        )
    response = StreamingResponse(
        made.chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{made.filename}"'},
    )
    return desk.finish(response)
