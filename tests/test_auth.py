"""API keys -> the principal (stampbook.auth): the per-worker key cache
(STAMPBOOK_AUTH_CACHE_SECONDS)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI

from stampbook import auth
from stampbook.config import Settings
from tests.conftest import Api, suite_settings


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The suite's settings, with key lookups cached for a minute."""
    return suite_settings(database_url, auth_cache_seconds=60)


async def test_requests_in_flight_when_the_entry_is_missing_share_one_lookup(
    app: FastAPI, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    stamp_idx = await api.stamp()
    lookups = 0
    real_lookup = auth.principal_for_key

    async def slow_counted_lookup(*args: Any, **kwargs: Any) -> Any:
        nonlocal lookups
        lookups += 1
        await asyncio.sleep(0.05)  # long enough for every request to arrive
        return await real_lookup(*args, **kwargs)

    monkeypatch.setattr(auth, "principal_for_key", slow_counted_lookup)
    app.state.runtime.key_cache.clear()  # as if the entry had just expired

    async def validate() -> int:
        return await api.code("GET", "validate", params={"stampIdx": stamp_idx})

    assert await asyncio.gather(*(validate() for _ in range(10))) == [0] * 10
    assert lookups == 1
    assert await validate() == 0
    assert lookups == 1  # cached
