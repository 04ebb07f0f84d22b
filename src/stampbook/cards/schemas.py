"""Request bodies of the card extension."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt, StrictStr

from stampbook.kit.params import YN, HttpUrl, Idx, NotNull
from stampbook.kit.schemas import WireModel

CardName = Annotated[StrictStr, Field(min_length=1, max_length=200)]
CardTitle = Annotated[StrictStr, Field(max_length=500)]
MaxStamps = Annotated[StrictInt, Field(ge=1, le=100)]
OnsitePassword = Annotated[StrictStr, Field(min_length=1, max_length=100)]
IntervalSeconds = Annotated[StrictInt, Field(ge=0, le=31_536_000)]
# Stamps per stamp per day (0: no limit / never suspicious).
PerDay = Annotated[StrictInt, Field(ge=0, le=100_000)]


class CreateCard(WireModel):
    """POST /card/create."""

    cardNm: CardName
    cardTtl: CardTitle | None = None
    maxStamps: MaxStamps
    url: HttpUrl | None = None
    stampImgUrl: HttpUrl | None = None
    onsiteYn: YN = "N"
    onsitePwd: OnsitePassword | None = None
    minIntervalSec: IntervalSeconds = 0
    autoRenewYn: YN = "N"
    maxAddsPerDay: PerDay = 0
    suspiciousAddsPerDay: PerDay = 0
    activeYn: YN = "Y"


class UpdateCard(WireModel):
    """PUT /card/update: only the fields sent change."""

    cardIdx: Idx
    cardNm: Annotated[CardName | None, NotNull] = None
    cardTtl: CardTitle | None = None
    maxStamps: Annotated[MaxStamps | None, NotNull] = None
    url: HttpUrl | None = None
    stampImgUrl: HttpUrl | None = None
    onsiteYn: Annotated[YN | None, NotNull] = None
    onsitePwd: OnsitePassword | None = None
    minIntervalSec: Annotated[IntervalSeconds | None, NotNull] = None
    autoRenewYn: Annotated[YN | None, NotNull] = None
    maxAddsPerDay: Annotated[PerDay | None, NotNull] = None
    suspiciousAddsPerDay: Annotated[PerDay | None, NotNull] = None
    activeYn: Annotated[YN | None, NotNull] = None
