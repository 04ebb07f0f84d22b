"""Request bodies of the receipt-code endpoints, named as on the wire."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt, StrictStr

from stampbook.kit.params import Idx, Memo
from stampbook.kit.schemas import WireModel

CodeStamps = Annotated[StrictInt, Field(ge=1, le=10)]
TtlSeconds = Annotated[StrictInt, Field(ge=30, le=604_800)]
# A code is secrets.token_urlsafe(16): 22 characters; anything near is looked up.
CodeText = Annotated[StrictStr, Field(min_length=1, max_length=100)]


class CreateCode(WireModel):
    """POST /code/create."""

    cardIdx: Idx
    stamps: CodeStamps = 1
    ttlSec: TtlSeconds = 600
    memo: Memo | None = None


class ClaimCode(WireModel):
    """PUT /code/claim: the code's stamps onto this stamp (same card)."""

    code: CodeText
    stampIdx: Idx
