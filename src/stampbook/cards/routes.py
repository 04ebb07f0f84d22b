"""The card extension: create, update, get, list, delete."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from starlette.responses import Response

from stampbook.cards import service
from stampbook.cards.schemas import CreateCard, UpdateCard
from stampbook.kit.call import Call, authenticate
from stampbook.kit.openapi import responses_for
from stampbook.kit.params import DEFAULT_PAGE_SIZE, Cursor, Limit, QueryIdx

router = APIRouter(prefix="/api/stamp/v1/card", tags=["cards"])


class CardView(BaseModel):
    """The card object."""

    cardIdx: int
    cardNm: str
    cardTtl: str | None
    maxStamps: int
    url: str | None
    stampImgUrl: str | None
    onsiteYn: str
    onsitePwd: str | None
    minIntervalSec: int
    regYmdt: str
    autoRenewYn: str
    maxAddsPerDay: int
    suspiciousAddsPerDay: int


class CardPage(BaseModel):
    """A page of cards."""

    items: list[CardView]
    nextCursor: str | None


@router.post("/create", responses=responses_for(int))
async def create_card(body: CreateCard, call: Call = Depends(authenticate)) -> Response:
    """Define a card; the result is the new cardIdx."""
    return await call.write(lambda conn, ctx: service.create(conn, ctx, body), params=body.sent())


@router.put("/update", responses=responses_for(None))
async def update_card(body: UpdateCard, call: Call = Depends(authenticate)) -> Response:
    """Change only the fields sent."""
    return await call.write(lambda conn, ctx: service.update(conn, ctx, body), params=body.sent())


@router.get("/get", responses=responses_for(CardView))
async def get_card(cardIdx: QueryIdx, call: Call = Depends(authenticate)) -> Response:
    """One card."""
    return await call.read(lambda conn, ctx: service.get(conn, ctx, card_idx=cardIdx))


@router.get("/list", responses=responses_for(CardPage))
async def list_cards(
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
    call: Call = Depends(authenticate),
) -> Response:
    """A page of the account's cards, newest first."""
    return await call.read(
        lambda conn, ctx: service.list_cards(conn, ctx, limit=limit, cursor=cursor)
    )


@router.delete("/delete", responses=responses_for(None))
async def delete_card(cardIdx: QueryIdx, call: Call = Depends(authenticate)) -> Response:
    """Delete a card that has no stamps."""
    return await call.write(
        lambda conn, ctx: service.delete(conn, ctx, card_idx=cardIdx),
        params={"cardIdx": cardIdx},
    )
