"""The per-worker API-key cache (stampbook/auth.py): no database round trip in
the steady state, and a revocation honoured by every worker within a second."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select, update

from stampbook import auth
from stampbook.accounts import service as accounts
from stampbook.db.schema import account, api_key
from stampbook.kit.clock import utc_naive
from stampbook.kit.db import Database
from tests.conftest import new_key, suite_settings
from tests.servers import RealServer, real_server

REVOKED_WITHIN = 1.0
PROBE_PATH = "/api/stamp/v1/validate"
_probes = itertools.count(1_000_000_000)


async def _revoke(database_url: str, key: str) -> None:
    database = Database(database_url, pool_size=1)
    try:
        async with database.write() as conn:
            key_idx = (
                await conn.execute(
                    select(api_key.c.key_idx).where(api_key.c.key_hash == accounts.hash_key(key))
                )
            ).scalar_one()
            assert await accounts.revoke_key(
                conn, key_idx=key_idx, now=utc_naive(datetime.now(UTC))
            )
    finally:
        await database.dispose()


async def _probe(server: RealServer, key: str) -> tuple[int, float, int]:
    """One request on a connection of its own (so that any worker may take
    it): its probe number, when it was sent and the HTTP status."""
    number = next(_probes)
    sent = time.monotonic()
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30, limits=limits) as http:
        response = await http.get(
            PROBE_PATH, params={"stampIdx": number}, headers={"Authorization": f"APIKey {key}"}
        )
    return number, sent, response.status_code


def _answered_by(server: RealServer) -> dict[int, int]:
    """Probe number -> pid of the worker that answered it, from the access log."""
    found = {}
    for line in server.log().splitlines():
        if '"stampbook.access"' in line and PROBE_PATH in line:
            entry = json.loads(line)
            found[int(entry["path"].rsplit("=", 1)[1])] = int(entry["pid"])
    return found


async def _burst(server: RealServer, key: str) -> list[tuple[int, float, int]]:
    return list(await asyncio.gather(*(_probe(server, key) for _ in range(6))))


@pytest.mark.slow
async def test_a_revoked_key_is_refused_by_every_worker_within_a_second(
    database_url: str,
) -> None:
    env = {"STAMPBOOK_LOG_LEVEL": "info", "STAMPBOOK_LOG_FORMAT": "json"}
    with real_server(database_url, workers=2, env=env) as server:
        key, _ = await new_key(database_url)
        # Both workers admit the key (and cache it) before the revocation.
        admitted: set[int] = set()
        deadline = time.monotonic() + 60
        while len(admitted) < 2:
            assert time.monotonic() < deadline, "the two workers never both answered"
            probes = await _burst(server, key)
            assert {status for _, _, status in probes} == {200}
            owners = _answered_by(server)
            admitted |= {owners[number] for number, _, _ in probes if number in owners}

        await _revoke(database_url, key)
        revoked_at = time.monotonic()
        # Poll until both workers have refused requests sent a second or more after it.
        late: list[tuple[int, float, int]] = []
        refused_late: set[int] = set()
        while refused_late != admitted:
            assert time.monotonic() < revoked_at + 60, f"only {refused_late} refused it"
            probes = await _burst(server, key)
            late += [probe for probe in probes if probe[1] >= revoked_at + REVOKED_WITHIN]
            owners = _answered_by(server)
            refused_late = {owners[number] for number, _, _ in late if number in owners}

    assert late and {status for _, _, status in late} == {401}, late


async def test_a_worker_keeps_a_key_without_looking_it_up_until_a_change_is_counted(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stampbook.app import create_app

    app = create_app(suite_settings(database_url, key_cache=True))
    key, account_idx = await new_key(database_url)
    lookups = 0
    real_lookup = accounts.principal_for_key

    async def counted(*args: object, **kwargs: object) -> object:
        nonlocal lookups
        lookups += 1
        return await real_lookup(*args, **kwargs)  # type: ignore[arg-type]

    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"APIKey {key}"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as http,
    ):
        runtime = app.state.runtime
        deadline = time.monotonic() + 10
        while runtime.key_watch.current() is None:  # the watch's first reading
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        monkeypatch.setattr(auth, "principal_for_key", counted)
        for _ in range(5):
            assert (await http.get("/api/stamp/v1/card/list")).status_code == 200
        assert lookups == 1  # then cached
        # Any change to the account is counted (a trigger), and the cache drops it.
        database = Database(database_url, pool_size=1)
        try:
            async with database.write() as conn:
                await conn.execute(
                    update(account)
                    .where(account.c.account_idx == account_idx)
                    .values(timezone="Asia/Seoul")
                )
        finally:
            await database.dispose()
        while lookups == 1:
            assert time.monotonic() < deadline, "the change never reached the cache"
            assert (await http.get("/api/stamp/v1/card/list")).status_code == 200
