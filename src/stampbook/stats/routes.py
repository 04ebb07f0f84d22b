"""The programme's numbers and exports by API key: ``stats`` and ``export``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.responses import Response, StreamingResponse

from stampbook.kit.call import Call, authenticate
from stampbook.kit.openapi import responses_for
from stampbook.kit.params import OptionalQueryIdx, Ymd
from stampbook.stats import service

router = APIRouter(prefix="/api/stamp/v1", tags=["stats"])

FromDate = Annotated[Ymd | None, Query(alias="from", description="First day (YYYY-MM-DD)")]
ToDate = Annotated[Ymd | None, Query(alias="to", description="Last day, included (YYYY-MM-DD)")]


class StatsTotals(BaseModel):
    """The range's totals (see docs/api.md for each definition)."""

    stampsAdded: int
    stampsRemoved: int
    cardsIssued: int
    activeCustomers: int
    cardsCompleted: int
    rewardsRedeemed: int
    completionRate: float | None
    redemptionRate: float | None
    medianDaysToComplete: float | None


class StatsDay(BaseModel):
    """One day of the range, in the account's time zone (zeros included)."""

    date: str
    stampsAdded: int
    stampsRemoved: int
    cardsIssued: int
    cardsCompleted: int
    rewardsRedeemed: int


class ProgressBar(BaseModel):
    """How many of today's active, unredeemed stamps hold ``stamps`` stamps."""

    stamps: int
    count: int


class Stats(BaseModel):
    """The stats result."""

    from_: str = Field(alias="from")
    to: str
    cardIdx: int | None
    totals: StatsTotals
    daily: list[StatsDay]
    progress: list[ProgressBar]


@router.get("/stats", responses=responses_for(Stats))
async def stats(
    first: FromDate = None,
    last: ToDate = None,
    cardIdx: OptionalQueryIdx = None,
    call: Call = Depends(authenticate),
) -> Response:
    """Stamps added, cards issued, completed and redeemed, per day and in total,
    from the ledger (default: the last 30 days in the account's time zone)."""
    return await call.read(
        lambda conn, ctx: service.stats(conn, ctx, first=first, last=last, card_idx=cardIdx)
    )


_CSV = {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "The CSV file"}


@router.get("/export", responses={**responses_for(None), 200: _CSV}, response_class=Response)
async def export(
    kind: Annotated[Literal["stamps", "events"], Query()],
    first: FromDate = None,
    last: ToDate = None,
    call: Call = Depends(authenticate),
) -> Response:
    """A CSV (UTF-8 with BOM) of the stamps created in the range, or of the
    range's ledger, streamed row by row (default: the last 30 days)."""
    result = service.export(call.runtime.db, call.context(), kind=kind, first=first, last=last)
    return StreamingResponse(
        result.chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{result.filename}"'},
    )
