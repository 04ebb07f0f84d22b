"""What a wallet pass shows, the same for Apple and Google: built from the
stamp's view row, or from the snapshot a deleted stamp's pass keeps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from stampbook.stamps.views import stamp_url

# The view row's columns a pass shows, kept as the snapshot of a deleted stamp.
SNAPSHOT_COLUMNS = (
    "card_idx",
    "card_nm",
    "card_ttl",
    "stamps",
    "max_stamps",
    "strt_ymd",
    "end_ymd",
    "token",
    "domain",
)
STATE_VOID = "void"


@dataclass(frozen=True, slots=True)
class PassContent:
    """The facts on one pass."""

    shop: str
    card_idx: int
    card_name: str
    reward: str | None
    stamps: int
    max_stamps: int
    starts: date
    ends: date
    page_url: str
    # The stamp page's state (page.service.page_state), or "void" once deleted.
    state: str

    @property
    def count(self) -> str:
        """The count as the pass shows it: "7 / 10"."""
        return f"{self.stamps} / {self.max_stamps}"


def snapshot_of(row: Any) -> str:
    """What a pass shows of ``row`` (a stamp's view row), kept when the stamp goes."""
    return orjson.dumps({name: getattr(row, name) for name in SNAPSHOT_COLUMNS}).decode()


def snapshot_row(snapshot: str) -> dict[str, Any]:
    """A snapshot back as view-row values (dates as dates)."""
    values: dict[str, Any] = orjson.loads(snapshot)
    for name in ("strt_ymd", "end_ymd"):
        values[name] = date.fromisoformat(values[name])
    return values


def content_of(row: Any, *, shop: str, public_url: str, state: str) -> PassContent:
    """The facts on the pass of the stamp whose view row (or snapshot) is ``row``."""
    return PassContent(
        shop=shop,
        card_idx=int(row.card_idx),
        card_name=row.card_nm,
        reward=row.card_ttl,
        stamps=int(row.stamps),
        max_stamps=int(row.max_stamps),
        starts=row.strt_ymd,
        ends=row.end_ymd,
        page_url=stamp_url(row, public_url),
        state=state,
    )
