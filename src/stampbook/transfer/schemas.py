"""One imported row: the stamp object's fields (``formats.FIELDS``), checked with
the same wire types as the API's bodies (``kit.params``, the card and stamp
schemas), and stricter in one way: an unknown field refuses the row, so a
misspelt column is never silently dropped."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, StrictStr

from stampbook.cards.schemas import CardName, CardTitle, MaxStamps, OnsitePassword
from stampbook.kit.params import YN, HttpUrl, Idx, Memo, ShortText, UserId, Ymd
from stampbook.kit.schemas import WireModel
from stampbook.stamps.schemas import StampCount

_YMDT_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def _ymdt(value: str) -> str:
    if not _YMDT_PATTERN.fullmatch(value):
        raise ValueError("must be a timestamp as YYYY-MM-DD HH:MM:SS")
    try:
        datetime.fromisoformat(value)  # a real date and time (strptime is 20 times slower)
    except ValueError as exc:
        raise ValueError("must be a real date and time as YYYY-MM-DD HH:MM:SS") from exc
    return value


Ymdt = Annotated[StrictStr, AfterValidator(_ymdt)]


class ImportRow(WireModel):
    """A stamp object as read from an import file."""

    model_config = ConfigDict(extra="forbid")

    stampIdx: Idx
    domain: HttpUrl | None = None
    cardIdx: Idx | None = None
    cardNm: CardName | None = None
    cardTtl: CardTitle | None = None
    stamps: StampCount = 0
    maxStamps: MaxStamps | None = None
    stampUrl: Annotated[StrictStr, Field(max_length=4000)] | None = None
    url: HttpUrl | None = None
    strtYmd: Ymd
    endYmd: Ymd
    onsiteYn: YN | None = None
    onsitePwd: OnsitePassword | None = None
    memo: Memo | None = None
    activeYn: YN = "Y"
    useYn: YN = "N"
    userId: UserId | None = None
    userNm: ShortText | None = None
    userPhnno: ShortText | None = None
    userEml: ShortText | None = None
    userEtc1: ShortText | None = None
    userEtc2: ShortText | None = None
    stampImgUrl: HttpUrl | None = None
    regYmdt: Ymdt | None = None
    payloadVersion: Literal["v1"] | None = None
