"""Apps with a wallet configured, on both databases, and the signing material."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from stampbook.app import create_app
from stampbook.config import Settings
from stampbook.db.schema import wallet_job, wallet_pass, wallet_registration
from stampbook.kit.clock import FrozenClock
from stampbook.kit.db import Database
from tests.conftest import Api, new_key, suite_settings
from tests.wallet.pki import ApplePki, GoogleAccount, make_apple_pki, make_google_account


@pytest.fixture(scope="session")
def apple_pki(tmp_path_factory: pytest.TempPathFactory) -> ApplePki:
    """A root CA, a WWDR stand-in and a pass type certificate, made for this run."""
    return make_apple_pki(tmp_path_factory.mktemp("apple-pki"))


@pytest.fixture(scope="session")
def google_account(tmp_path_factory: pytest.TempPathFactory) -> GoogleAccount:
    """A Google service account key made for this run."""
    return make_google_account(tmp_path_factory.mktemp("google"))


@pytest.fixture
def wallet_settings(
    database_url: str, apple_pki: ApplePki, google_account: GoogleAccount
) -> Settings:
    """Both wallets configured (their servers nowhere: nothing is sent in-process)."""
    return suite_settings(
        database_url,
        **apple_pki.settings(),
        **google_account.settings(),
        apns_url="https://127.0.0.1:9",
        google_api_url="http://127.0.0.1:9/walletobjects/v1",
        google_token_url="http://127.0.0.1:9/token",
        wallet_workers_enabled=False,
    )


@pytest.fixture
async def wallet_app(wallet_settings: Settings, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    """The app with both wallets on."""
    application = create_app(wallet_settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def wallet_client(wallet_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``wallet_app``."""
    transport = httpx.ASGITransport(app=wallet_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def wallet_api(
    wallet_client: httpx.AsyncClient, database_url: str, clock: FrozenClock
) -> Api:
    """A fresh account on the wallet app."""
    key, account_idx = await new_key(database_url)
    return Api(wallet_client, key, account_idx, clock)


async def token_of(api: Api, stamp_idx: int) -> str:
    """The page token of a stamp (from its stampUrl)."""
    page = await api.ok("GET", "list", params={"limit": 100})
    url = next(item["stampUrl"] for item in page["items"] if item["stampIdx"] == stamp_idx)
    return str(url.rsplit("/", 1)[-1])


def unzip(data: bytes) -> dict[str, bytes]:
    """A .pkpass's files."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def pass_document(data: bytes) -> dict[str, Any]:
    """pass.json of a .pkpass."""
    found: dict[str, Any] = orjson.loads(unzip(data)["pass.json"])
    return found


async def jobs_of(database_url: str, *, kind: str | None = None) -> list[Any]:
    """Every wallet job row (of ``kind``)."""
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            query = select(wallet_job).order_by(wallet_job.c.job_idx)
            if kind is not None:
                query = query.where(wallet_job.c.kind == kind)
            return list((await conn.execute(query)).all())
    finally:
        await database.dispose()


async def jobs_for_device(database_url: str, push_token: str) -> list[Any]:
    """The APNs jobs still queued for the device with this push token."""
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            query = (
                select(wallet_job)
                .join(
                    wallet_registration,
                    wallet_registration.c.registration_idx == wallet_job.c.registration_idx,
                )
                .where(wallet_registration.c.push_token == push_token)
            )
            return list((await conn.execute(query)).all())
    finally:
        await database.dispose()


async def pass_idx_of(database_url: str, serial: str) -> int:
    """The idx of the pass with this serial."""
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            query = select(wallet_pass.c.pass_idx).where(wallet_pass.c.serial == serial)
            return int((await conn.execute(query)).scalar_one())
    finally:
        await database.dispose()


async def pass_count(database_url: str) -> int:
    """How many passes exist."""
    database = Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(wallet_pass))).scalar_one()
            )
    finally:
        await database.dispose()


ROOT = Path(__file__).parent
