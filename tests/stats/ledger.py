"""A ledger built row by row, at chosen instants, for statistics with known
answers: stamps and their events are inserted directly, as the services
would have written them, so that day boundaries can be hit to the second."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, update

from stampbook.db.schema import account, card, stamp, stamp_event
from stampbook.kit.db import Database


class Ledger:
    """Writes one account's cards, stamps and events into ``database_url``."""

    def __init__(self, database_url: str, account_idx: int) -> None:
        self.database = Database(database_url, pool_size=1)
        self.account_idx = account_idx

    async def close(self) -> None:
        await self.database.dispose()

    async def set_timezone(self, name: str) -> None:
        async with self.database.write() as conn:
            await conn.execute(
                update(account)
                .where(account.c.account_idx == self.account_idx)
                .values(timezone=name)
            )

    async def card(self, max_stamps: int, name: str = "Coffee") -> int:
        async with self.database.write() as conn:
            result = await conn.execute(
                insert(card)
                .values(
                    account_idx=self.account_idx,
                    card_nm=name,
                    max_stamps=max_stamps,
                    reg_ymdt=datetime(2020, 1, 1),
                )
                .returning(card.c.card_idx)
            )
            return int(result.scalar_one())

    async def stamp(
        self,
        card_idx: int,
        *,
        user_id: str,
        created: datetime,
        max_stamps: int,
        moved_to: int | None = None,
        **columns: Any,
    ) -> int:
        """A stamp and its CREATE event on ``card_idx`` at ``created`` (UTC); the
        row itself on ``moved_to`` when it has been moved since."""
        values: dict[str, Any] = {
            "account_idx": self.account_idx,
            "card_idx": moved_to or card_idx,
            "token": secrets.token_urlsafe(24),
            "stamps": 0,
            "max_stamps": max_stamps,
            "strt_ymd": date(2020, 1, 1),
            "end_ymd": date(2099, 12, 31),
            "user_id": user_id,
            "reg_ymdt": created,
            **columns,
        }
        async with self.database.write() as conn:
            result = await conn.execute(insert(stamp).values(values).returning(stamp.c.stamp_idx))
            stamp_idx = int(result.scalar_one())
        await self.event(stamp_idx, card_idx, "CREATE", 0, 0, created)
        return stamp_idx

    async def event(
        self, stamp_idx: int, card_idx: int, action: str, before: int, after: int, at: datetime
    ) -> None:
        async with self.database.write() as conn:
            await conn.execute(
                insert(stamp_event).values(
                    account_idx=self.account_idx,
                    stamp_idx=stamp_idx,
                    card_idx=card_idx,
                    action=action,
                    stamps_before=before,
                    stamps_after=after,
                    source="API",
                    reg_ymdt=at,
                )
            )

    async def adds(self, stamp_idx: int, card_idx: int, first: int, *moments: datetime) -> None:
        """One ADD per moment, counting up from ``first``."""
        for n, at in enumerate(moments):
            await self.event(stamp_idx, card_idx, "ADD", first + n, first + n + 1, at)
