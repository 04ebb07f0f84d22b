"""Request bodies of the stamp verbs, named exactly as on the wire."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictStr

from stampbook.kit.params import YN, HttpUrl, Idx, Memo, NotNull, ShortText, UserId, Ymd
from stampbook.kit.schemas import WireModel

StampCount = Annotated[int, Field(strict=True, ge=0, le=100_000)]
OnsitePassword = Annotated[StrictStr, Field(max_length=100)]


class StampRef(WireModel):
    """A body naming one stamp."""

    stampIdx: Idx


class UserFields(WireModel):
    """The customer fields a stamp carries (all optional)."""

    memo: Memo | None = None
    userNm: ShortText | None = None
    userPhnno: ShortText | None = None
    userEml: ShortText | None = None
    userEtc1: ShortText | None = None
    userEtc2: ShortText | None = None


class CreateStamp(UserFields):
    """POST /create."""

    cardIdx: Idx
    strtYmd: Ymd
    endYmd: Ymd
    domain: HttpUrl | None = None
    activeYn: YN = "Y"
    userId: UserId | None = None


class UpdateStamp(UserFields):
    """PUT /update: only the fields sent change."""

    stampIdx: Idx
    cardIdx: Annotated[Idx | None, NotNull] = None
    stamps: Annotated[StampCount | None, NotNull] = None
    resetPinYn: Annotated[YN | None, NotNull] = None
    useYn: Annotated[YN | None, NotNull] = None
    domain: HttpUrl | None = None
    strtYmd: Annotated[Ymd | None, NotNull] = None
    endYmd: Annotated[Ymd | None, NotNull] = None
    activeYn: Annotated[YN | None, NotNull] = None
    userId: Annotated[UserId | None, NotNull] = None


class RedeemStamp(StampRef):
    """PUT /redeem."""

    onsitePwd: OnsitePassword | None = None
