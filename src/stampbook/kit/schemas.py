"""The base of every feature's request bodies, and the one check of storable text.

Every room's schemas (stamps, cards, webhooks) derive from ``WireModel``;
``storable_text`` is also what ``kit.call.authenticate`` applies to query
strings, so a body field and a query parameter refuse the same text.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from stampbook.kit.errors import Code, StampbookError


def storable_text(value: str) -> bool:
    """False for text no database column may hold: a NUL character (PostgreSQL
    refuses it) or a lone surrogate (not encodable as UTF-8 anywhere)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class WireModel(BaseModel):
    """A request body named as on the wire. An unknown field is refused (1001
    naming it): ignored, a misspelt ``stampz`` would answer 0 and change nothing."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        """1001 naming the field for text no database can store (NUL, lone
        surrogates): PostgreSQL would fail on it with a 500, SQLite would not."""
        if isinstance(data, dict):
            for name, value in data.items():
                # model_fields is looked up last: it costs more than the check
                # itself (an import validates 100,000 rows through here).
                if isinstance(value, str) and not storable_text(value) and name in cls.model_fields:
                    raise StampbookError(
                        Code.INVALID_PARAMETER, param=name, expected=("storable", {})
                    )
        return data

    def sent(self) -> dict[str, object]:
        """Only the fields the client sent, in JSON form (for fingerprints)."""
        return self.model_dump(mode="json", exclude_unset=True)
