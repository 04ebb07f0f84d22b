"""The compatible stamp API (create, add, remove, update, delete, validate,
redeem) and the list and history extensions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from starlette.responses import Response

from stampbook.kit.call import Call, authenticate
from stampbook.kit.openapi import responses_for
from stampbook.kit.params import (
    DEFAULT_PAGE_SIZE,
    YN,
    Cursor,
    Limit,
    OptionalQueryIdx,
    QueryIdx,
)
from stampbook.stamps import hot_path, reads, service
from stampbook.stamps.schemas import CreateStamp, RedeemStamp, StampRef, UpdateStamp

router = APIRouter(prefix="/api/stamp/v1", tags=["stamps"])


class ListedStamp(BaseModel):
    """The stamp object as list shows it: validate's, without ``onsitePwd``."""

    stampIdx: int
    domain: str
    cardIdx: int
    cardNm: str
    cardTtl: str | None
    stamps: int
    maxStamps: int
    stampUrl: str
    url: str | None
    strtYmd: str
    endYmd: str
    onsiteYn: str
    memo: str | None
    activeYn: str
    userId: str
    userNm: str | None
    userPhnno: str | None
    userEml: str | None
    userEtc1: str | None
    userEtc2: str | None
    stampImgUrl: str
    regYmdt: str
    payloadVersion: str


class StampView(ListedStamp):
    """The stamp object, as validate returns it: with the card's on-site
    password, which the contract puts after ``onsiteYn``."""

    onsitePwd: str | None


class StampPage(BaseModel):
    """A page of stamps."""

    items: list[ListedStamp]
    nextCursor: str | None


class EventView(BaseModel):
    """One ledger row."""

    eventIdx: int
    stampIdx: int
    action: str
    stampsBefore: int
    stampsAfter: int
    source: str
    regYmdt: str
    codeIdx: int | None


class EventPage(BaseModel):
    """A page of ledger rows."""

    items: list[EventView]
    nextCursor: str | None


@router.post("/create", responses=responses_for(int))
async def create_stamp(body: CreateStamp, call: Call = Depends(authenticate)) -> Response:
    """Issue a stamp (a customer's copy of a card); the result is the new stampIdx."""
    return await call.write(lambda conn, ctx: service.create(conn, ctx, body), params=body.sent())


@router.put("/add", responses=responses_for(None))
async def add_stamp(body: StampRef, call: Call = Depends(authenticate)) -> Response:
    """Add exactly one stamp, if every rule allows it."""
    return await call.write_hot(
        lambda db, ctx, fingerprint: service.add_at_once(
            db, ctx, fingerprint, stamp_idx=body.stampIdx
        ),
        params=body.sent(),
    )


@router.put("/remove", responses=responses_for(None))
async def remove_stamp(body: StampRef, call: Call = Depends(authenticate)) -> Response:
    """Take one stamp back (never below zero)."""
    return await call.write_hot(
        lambda db, ctx, fingerprint: service.remove_at_once(
            db, ctx, fingerprint, stamp_idx=body.stampIdx
        ),
        params=body.sent(),
    )


@router.put("/update", responses=responses_for(None))
async def update_stamp(body: UpdateStamp, call: Call = Depends(authenticate)) -> Response:
    """Change only the fields sent."""
    return await call.write(lambda conn, ctx: service.update(conn, ctx, body), params=body.sent())


@router.delete("/delete", responses=responses_for(None))
async def delete_stamp(stampIdx: QueryIdx, call: Call = Depends(authenticate)) -> Response:
    """Delete a stamp and its history, permanently."""
    return await call.write(
        lambda conn, ctx: service.delete(conn, ctx, stamp_idx=stampIdx),
        params={"stampIdx": stampIdx},
    )


@router.get("/validate", responses=responses_for(StampView))
async def validate_stamp(stampIdx: QueryIdx, call: Call = Depends(authenticate)) -> Response:
    """The stamp, when it exists, is active, within its dates and not redeemed."""
    db = call.runtime.db
    return await call.read_hot(
        lambda ctx: hot_path.validate(db, ctx, stamp_idx=stampIdx),
        lambda conn, ctx: service.validate(conn, ctx, stamp_idx=stampIdx),
    )


@router.put("/redeem", responses=responses_for(None))
async def redeem_stamp(body: RedeemStamp, call: Call = Depends(authenticate)) -> Response:
    """Mark a complete card's reward as used (on-site cards need onsitePwd)."""
    return await call.write(
        lambda conn, ctx: service.redeem(
            conn, ctx, stamp_idx=body.stampIdx, onsite_pwd=body.onsitePwd
        ),
        params=body.sent(),
    )


@router.get("/list", responses=responses_for(StampPage))
async def list_stamps(
    cardIdx: OptionalQueryIdx = None,
    userId: Annotated[str | None, Query(max_length=100)] = None,
    activeYn: Annotated[YN | None, Query()] = None,
    useYn: Annotated[YN | None, Query()] = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
    call: Call = Depends(authenticate),
) -> Response:
    """A page of the account's stamps, newest first, with optional filters."""

    async def run(conn: Any, ctx: Any) -> Any:
        return await reads.list_stamps(
            conn,
            ctx,
            card_idx=cardIdx,
            user_id=userId,
            active_yn=activeYn,
            use_yn=useYn,
            limit=limit,
            cursor=cursor,
        )

    return await call.read(run)


@router.get("/history", responses=responses_for(EventPage))
async def stamp_history(
    stampIdx: QueryIdx,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
    call: Call = Depends(authenticate),
) -> Response:
    """A stamp's ledger, newest first: CREATE, ADD, REMOVE, UPDATE, USE."""
    return await call.read(
        lambda conn, ctx: reads.history(conn, ctx, stamp_idx=stampIdx, limit=limit, cursor=cursor)
    )


# Routes are matched in order, a regex each: the two the lunch rush calls come first.
_HOT_PATHS = ("/api/stamp/v1/add", "/api/stamp/v1/validate", "/api/stamp/v1/remove")
router.routes.sort(key=lambda route: getattr(route, "path", "") not in _HOT_PATHS)
