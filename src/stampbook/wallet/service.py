"""The wallet's services: each owns its transaction.

Making a stamp's pass, the PassKit web service's answers (register,
unregister, the serials changed since a tag, the latest pass) and the Google
save link. What a pass shows is built from the stamp's own view row, with the
stamp page's state (``page.service.page_state``), in ``content_for``.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.kit.clock import utc_naive
from stampbook.kit.context import zone_for
from stampbook.kit.runtime import Runtime
from stampbook.page import service as page_service
from stampbook.stamps import repository as stamp_repo
from stampbook.wallet import google, pkpass
from stampbook.wallet import outbox as wallet_outbox
from stampbook.wallet import repository as repo
from stampbook.wallet.content import STATE_VOID, PassContent, content_of, snapshot_row
from stampbook.wallet.credentials import apple_signer, load_service_account

log = logging.getLogger("stampbook.wallet")

SERIAL_BYTES = 18  # 24 URL-safe characters, no relation to the stampIdx
AUTH_TOKEN_BYTES = 24  # 32 characters; Apple asks for at least 16
WEB_SERVICE_PATH = "/wallet/apple"


@dataclass(frozen=True, slots=True)
class PassFile:
    """A signed .pkpass and when its pass last changed."""

    data: bytes
    serial: str
    updated_at: datetime


def web_service_url(runtime: Runtime) -> str:
    """``webServiceURL`` of every pass: ``{PUBLIC_URL}/wallet/apple``."""
    return runtime.settings.public_url + WEB_SERVICE_PATH


_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_TAG_DIGITS = 17  # microseconds until the year 5000; longer is no tag of ours


def tag_of(moment: datetime) -> str:
    """An update tag: the change time in microseconds (opaque to the phone)."""
    return str((moment - _EPOCH) // _MICROSECOND)


def moment_of_tag(tag: str | None) -> datetime | None:
    """The change time a tag names; None for no tag or one we never gave out."""
    if not tag or not tag.isdigit() or len(tag) > _TAG_DIGITS:
        return None
    return _EPOCH + int(tag) * _MICROSECOND


def token_matches(pass_row: Any, authorization: str | None) -> bool:
    """``Authorization: ApplePass <token>`` names this pass's token (constant time)."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme != "ApplePass" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), str(pass_row.auth_token).encode())


async def content_for(conn: AsyncConnection, runtime: Runtime, pass_row: Any) -> PassContent:
    """What the pass shows now: its stamp's view, or the snapshot of a deleted stamp."""
    shop = await repo.shop_name(conn, account_idx=int(pass_row.account_idx))
    public_url = runtime.settings.public_url
    row = None
    if pass_row.voided_yn != "Y":
        row = await stamp_repo.view(
            conn, account_idx=int(pass_row.account_idx), stamp_idx=int(pass_row.stamp_idx)
        )
    if row is None:
        values = snapshot_row(pass_row.snapshot) if pass_row.snapshot else None
        if values is None:
            raise LookupError("the pass's stamp is gone and left no snapshot")
        return content_of(_Values(values), shop=shop, public_url=public_url, state=STATE_VOID)
    zone = await page_service.zone_name(conn, runtime, row)
    today = runtime.clock.today(zone_for(zone))
    state = page_service.page_state(row, today)
    return content_of(row, shop=shop, public_url=public_url, state=state)


class _Values:
    """A snapshot's values as attributes, as a view row has them."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


async def _ensure_pass(conn: AsyncConnection, runtime: Runtime, row: Any) -> Any:
    found = await repo.pass_of_stamp(conn, stamp_idx=int(row.stamp_idx))
    if found is not None:
        return found
    now = utc_naive(runtime.clock.now())
    await repo.insert_pass(
        conn,
        {
            "serial": secrets.token_urlsafe(SERIAL_BYTES),
            "auth_token": secrets.token_urlsafe(AUTH_TOKEN_BYTES),
            "stamp_idx": int(row.stamp_idx),
            "account_idx": int(row.account_idx),
            "created_at": now,
            "updated_at": now,
        },
    )
    return await repo.pass_of_stamp(conn, stamp_idx=int(row.stamp_idx))


def _signed(runtime: Runtime, content: PassContent, pass_row: Any) -> PassFile:
    data = pkpass.build(
        content,
        signer=apple_signer(runtime.settings),
        serial=pass_row.serial,
        auth_token=pass_row.auth_token,
        web_service_url=web_service_url(runtime),
    )
    return PassFile(data, pass_row.serial, pass_row.updated_at)


async def pass_for_page(runtime: Runtime, token: str) -> PassFile | None:
    """The .pkpass of the stamp behind a page token (its pass made on first
    asking); None when there is no such stamp."""
    async with runtime.db.write() as conn:
        row = await page_service.find(conn, token)
        if row is None:
            return None
        pass_row = await _ensure_pass(conn, runtime, row)
        content = await content_for(conn, runtime, pass_row)
    return _signed(runtime, content, pass_row)


async def google_link(runtime: Runtime, token: str) -> str | None:
    """The "Save to Google Wallet" link of the stamp behind a page token; from
    now on its changes sync the object. None when there is no such stamp."""
    settings = runtime.settings
    async with runtime.db.write() as conn:
        row = await page_service.find(conn, token)
        if row is None:
            return None
        pass_row = await _ensure_pass(conn, runtime, row)
        if await repo.mark_google(conn, pass_idx=int(pass_row.pass_idx)):
            # The first sync makes the class and object should the customer
            # never press "save" on Google's side; later changes PATCH them.
            await conn.execute(
                wallet_outbox.SYNC,
                {"p_stamp_idx": int(row.stamp_idx), "p_now": utc_naive(runtime.clock.now())},
            )
        content = await content_for(conn, runtime, pass_row)
    assert settings.google_issuer_id is not None
    return google.save_url(
        content,
        account=load_service_account(settings),
        issuer_id=settings.google_issuer_id,
        serial=pass_row.serial,
        public_url=settings.public_url,
    )


async def register(
    runtime: Runtime, *, device_id: str, serial: str, authorization: str | None, push_token: str
) -> int:
    """Register a device for a pass's updates: 201 new, 200 known, 401 refused."""
    async with runtime.db.write() as conn:
        pass_row = await repo.pass_by_serial(conn, serial=serial)
        if pass_row is None or not token_matches(pass_row, authorization):
            return 401
        known = await repo.registration(conn, pass_idx=int(pass_row.pass_idx), device_id=device_id)
        if known is not None:
            if known.push_token != push_token:
                await repo.set_push_token(
                    conn, registration_idx=int(known.registration_idx), push_token=push_token
                )
            return 200
        await repo.insert_registration(
            conn,
            {
                "pass_idx": int(pass_row.pass_idx),
                "device_id": device_id,
                "push_token": push_token,
                "created_at": utc_naive(runtime.clock.now()),
            },
        )
    return 201


async def unregister(
    runtime: Runtime, *, device_id: str, serial: str, authorization: str | None
) -> int:
    """Stop a device's updates for a pass: 200, or 401 refused."""
    async with runtime.db.write() as conn:
        pass_row = await repo.pass_by_serial(conn, serial=serial)
        if pass_row is None or not token_matches(pass_row, authorization):
            return 401
        known = await repo.registration(conn, pass_idx=int(pass_row.pass_idx), device_id=device_id)
        if known is not None:
            await repo.delete_registration(conn, registration_idx=int(known.registration_idx))
    return 200


async def serials_since(
    runtime: Runtime, *, device_id: str, pass_type_id: str, tag: str | None
) -> dict[str, Any] | None:
    """``{serialNumbers, lastUpdated}`` of the device's passes changed since
    ``tag`` (all with none); None when none changed (204)."""
    async with runtime.db.read() as conn:
        rows = await repo.serials_updated(
            conn, device_id=device_id, pass_type_id=pass_type_id, since=moment_of_tag(tag)
        )
    if not rows:
        return None
    latest = max(row.updated_at for row in rows)
    return {"serialNumbers": [row.serial for row in rows], "lastUpdated": tag_of(latest)}


async def latest_pass(
    runtime: Runtime, *, serial: str, authorization: str | None
) -> PassFile | int:
    """The pass as it is now, or 401 (refused) or 404 (no such pass)."""
    async with runtime.db.read() as conn:
        pass_row = await repo.pass_by_serial(conn, serial=serial)
        if pass_row is None:
            return 401  # as Apple's reference server: an unknown serial reveals nothing
        if not token_matches(pass_row, authorization):
            return 401
        try:
            content = await content_for(conn, runtime, pass_row)
        except LookupError:
            return 404
    return _signed(runtime, content, pass_row)


def device_log(messages: list[str]) -> None:
    """Wallet's error reports about our passes, into our log."""
    for message in messages[:50]:
        log.warning("Apple Wallet reports: %s", str(message)[:500])
