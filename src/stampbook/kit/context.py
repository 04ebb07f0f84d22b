"""What a service call needs to know about who acts, when and where."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from stampbook.kit.clock import utc_naive

SOURCE_API = "API"
SOURCE_ONSITE = "ONSITE"
SOURCE_CLI = "CLI"
SOURCE_CODE = "CODE"
SOURCE_DASHBOARD = "DASHBOARD"
SOURCE_IMPORT = "IMPORT"  # stamps brought in by ``stampbook import``


@lru_cache(maxsize=64)
def zone_for(name: str) -> ZoneInfo:
    """A cached ZoneInfo for ``name``."""
    return ZoneInfo(name)


@dataclass(frozen=True, slots=True)
class CallContext:
    """The actor (account, key, source), the instant, and the server's public URL."""

    account_idx: int
    zone: ZoneInfo
    now: datetime
    public_url: str
    source: str = SOURCE_API
    key_idx: int | None = None
    # The dashboard user acting (source DASHBOARD), written on the ledger row.
    user_idx: int | None = None
    idempotency_key: str | None = None
    lockout_failures: int = 5
    lockout_minutes: int = 15
    # Wrong on-site passwords from one client address of the stamp page, over
    # every card, before that address is locked (stamps/onsite.py).
    lockout_address_failures: int = 20
    # A wallet is configured: changes also queue wallet updates (wallet/outbox.py).
    # Off, not one statement more runs on any change.
    wallet: bool = False

    @property
    def today(self) -> date:
        """Today in the account's time zone: the date rules use it."""
        return self.now.astimezone(self.zone).date()

    @property
    def now_naive(self) -> datetime:
        """Now, as stored (naive UTC)."""
        return utc_naive(self.now)

    @property
    def now_ms(self) -> int:
        """Now in epoch milliseconds (the minimum-interval rule's unit)."""
        return int(self.now.timestamp() * 1000)
