"""The receipt-code API: create, get, list, delete (revoke) and claim."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from starlette.responses import Response

from stampbook.codes import service
from stampbook.codes.schemas import ClaimCode, CreateCode
from stampbook.kit.call import Call, authenticate
from stampbook.kit.openapi import responses_for
from stampbook.kit.params import DEFAULT_PAGE_SIZE, Cursor, Limit, OptionalQueryIdx, QueryIdx

router = APIRouter(prefix="/api/stamp/v1/code", tags=["codes"])


class CreatedCode(BaseModel):
    """A new code: shown this once (only its hash is kept)."""

    codeIdx: int
    code: str
    url: str
    expiresYmdt: str


class CodeView(BaseModel):
    """A code as list and get show it (without the code itself)."""

    codeIdx: int
    cardIdx: int
    cardNm: str
    stamps: int
    memo: str | None
    state: str
    expiresYmdt: str
    usedYmdt: str | None
    usedStampIdx: int | None
    regYmdt: str


class CodePage(BaseModel):
    """A page of codes."""

    items: list[CodeView]
    nextCursor: str | None


@router.post("/create", responses=responses_for(CreatedCode))
async def create_code(body: CreateCode, call: Call = Depends(authenticate)) -> Response:
    """Create a single-use code worth ``stamps`` on a card, valid ``ttlSec`` seconds."""
    return await call.write(lambda conn, ctx: service.create(conn, ctx, body), params=body.sent())


@router.put("/claim", responses=responses_for(None))
async def claim_code(body: ClaimCode, call: Call = Depends(authenticate)) -> Response:
    """Add the code's stamps to a stamp of the code's card; a code claims once."""
    return await call.write(
        lambda conn, ctx: service.claim(conn, ctx, code=body.code, stamp_idx=body.stampIdx),
        params=body.sent(),
    )


@router.get("/get", responses=responses_for(CodeView))
async def get_code(codeIdx: QueryIdx, call: Call = Depends(authenticate)) -> Response:
    """One code and its state (live, used, expired, revoked)."""
    return await call.read(lambda conn, ctx: service.get(conn, ctx, code_idx=codeIdx))


@router.get("/list", responses=responses_for(CodePage))
async def list_codes(
    cardIdx: OptionalQueryIdx = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
    call: Call = Depends(authenticate),
) -> Response:
    """A page of the account's codes, newest first (optionally of one card)."""
    return await call.read(
        lambda conn, ctx: service.list_codes(
            conn, ctx, card_idx=cardIdx, limit=limit, cursor=cursor
        )
    )


@router.delete("/delete", responses=responses_for(None))
async def delete_code(codeIdx: QueryIdx, call: Call = Depends(authenticate)) -> Response:
    """Revoke an unused code."""
    return await call.write(
        lambda conn, ctx: service.revoke(conn, ctx, code_idx=codeIdx),
        params={"codeIdx": codeIdx},
    )
