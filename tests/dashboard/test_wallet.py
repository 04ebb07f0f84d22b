"""The dashboard with both wallets configured: the stamp page offers the
passes, and a stamp added from the dashboard queues the pass's push."""

from __future__ import annotations

import httpx
import pytest

from stampbook.config import Settings
from stampbook.wallet.outbox import KIND_APNS
from tests.conftest import suite_settings
from tests.dashboard.conftest import BrowserFactory, Shop
from tests.wallet.conftest import apple_pki, google_account, jobs_of, pass_document, token_of
from tests.wallet.pki import PASS_TYPE_ID, ApplePki, GoogleAccount

__all__ = ["apple_pki", "google_account"]


@pytest.fixture
def settings(database_url: str, apple_pki: ApplePki, google_account: GoogleAccount) -> Settings:
    """The dashboard's test settings with both wallets on."""
    return suite_settings(
        database_url,
        login_slow_seconds=0,
        **apple_pki.settings(),
        **google_account.settings(),
        wallet_workers_enabled=False,
    )


async def test_the_stamp_page_offers_the_passes_and_a_dashboard_add_pushes(
    browser: BrowserFactory, shop: Shop, client: httpx.AsyncClient, database_url: str
) -> None:
    stamp_idx = await shop.api.stamp()
    token = await token_of(shop.api, stamp_idx)
    page_url = f"https://stamps.example.test/s/{token}"
    document = pass_document((await client.get(f"/s/{token}/pass.pkpass")).content)
    registered = await client.post(
        f"/wallet/apple/v1/devices/dash-device/registrations/{PASS_TYPE_ID}/{document['serialNumber']}",
        json={"pushToken": "ee55"},
        headers={"Authorization": f"ApplePass {document['authenticationToken']}"},
    )
    assert registered.status_code == 201
    before = len(await jobs_of(database_url, kind=KIND_APNS))

    async with browser(shop.staff) as b:
        detail = (await b.get(f"/dashboard/stamps/{stamp_idx}")).text
        assert f'href="{page_url}/pass.pkpass"' in detail
        assert f'href="{page_url}/google-wallet"' in detail
        added = await b.post(
            f"/dashboard/stamps/{stamp_idx}/add", form_from=f"/dashboard/stamps/{stamp_idx}"
        )
        assert added.status_code in (200, 303)
    assert await shop.api.count(stamp_idx) == 1
    assert len(await jobs_of(database_url, kind=KIND_APNS)) == before + 1
