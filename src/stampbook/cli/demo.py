"""``stampbook demo``: a demo account, key, card and stamp, and how to try them."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.accounts import service as accounts
from stampbook.accounts import users
from stampbook.cards import service as cards
from stampbook.cards.schemas import CreateCard
from stampbook.cli.shared import account_context, load_settings, run_db
from stampbook.config import Settings
from stampbook.kit.clock import Clock, utc_naive
from stampbook.kit.errors import StampbookError
from stampbook.stamps import service as stamps
from stampbook.stamps.schemas import CreateStamp

DEMO_ACCOUNT = "demo"
DEMO_FILE = Path(".stampbook-demo")
DEMO_OWNER = "owner@demo.example.com"


async def demo_owner(
    conn: AsyncConnection, *, account_idx: int, saved: dict[str, Any] | None, now: Any
) -> dict[str, str] | None:
    """The demo's dashboard owner: created once (with a random password, kept in
    the demo file); None when it exists but its password is not known here."""
    if await users.find_by_email(conn, email=DEMO_OWNER) is not None:
        if saved and saved.get("owner_password"):
            return {"owner_email": DEMO_OWNER, "owner_password": str(saved["owner_password"])}
        return None
    password = secrets.token_urlsafe(12)
    await users.create_user(
        conn,
        account_idx=account_idx,
        email=DEMO_OWNER,
        role=users.ROLE_OWNER,
        password_hash=await users.hash_password(password),
        now=utc_naive(now),
    )
    return {"owner_email": DEMO_OWNER, "owner_password": password, "new_owner": "yes"}


def demo() -> None:
    """Create a demo account, key, card and stamp when none exist; print how to try them."""

    async def work(conn: AsyncConnection, settings: Settings) -> dict[str, Any]:
        saved = _load_demo(settings)
        now = Clock().now()
        existing = await accounts.find_account(conn, name=DEMO_ACCOUNT)
        if saved and existing and int(existing["account_idx"]) == saved.get("account_idx"):
            ctx = await account_context(conn, settings, DEMO_ACCOUNT)
            try:
                view = await stamps.validate(conn, ctx, stamp_idx=int(saved["stamp_idx"]))
                owner = await demo_owner(
                    conn, account_idx=int(existing["account_idx"]), saved=saved, now=now
                )
                return {**saved, **(owner or {}), "stamp_url": view["stampUrl"]}
            except StampbookError:
                pass
        created = await accounts.create_key(
            conn, account_name=DEMO_ACCOUNT, now=utc_naive(now), name="demo"
        )
        ctx = await account_context(conn, settings, DEMO_ACCOUNT)
        card_idx = await cards.create(
            conn,
            ctx,
            CreateCard(
                cardNm="Coffee card",
                cardTtl="Collect 10 stamps to get one free Americano.",
                maxStamps=10,
                url="https://example.com",
                onsiteYn="Y",
                onsitePwd="1234",
            ),
        )
        stamp_idx = await stamps.create(
            conn,
            ctx,
            CreateStamp(
                cardIdx=card_idx,
                strtYmd=ctx.today,
                endYmd=ctx.today + timedelta(days=365),
                userNm="Demo customer",
            ),
        )
        view = await stamps.validate(conn, ctx, stamp_idx=stamp_idx)
        owner = await demo_owner(conn, account_idx=created.account_idx, saved=saved, now=now)
        saved = {
            "database_url": settings.database_url,
            "account_idx": created.account_idx,
            "key": created.key,
            "card_idx": card_idx,
            "stamp_idx": stamp_idx,
            **(owner or {}),
        }
        return {**saved, "stamp_url": view["stampUrl"], "new": True}

    info = run_db(work)
    if info.pop("new", False) or info.pop("new_owner", None):
        saved = {k: v for k, v in info.items() if k not in ("stamp_url", "new_owner")}
        DEMO_FILE.write_text(json.dumps(saved, indent=2) + "\n")
        DEMO_FILE.chmod(0o600)
    base = load_settings().public_url
    typer.echo(
        f"""
Stampbook demo is ready ({DEMO_FILE} keeps these for the next run).

  API key      {info["key"]}
  API          {base}/api/stamp/v1/
  API docs     {base}/docs
  Stamp page   {info["stamp_url"]}   (on-site staff password: 1234)
  Dashboard    {base}/dashboard/   {_owner_line(info)}

Try it:
  curl -s -X PUT {base}/api/stamp/v1/add \\
       -H 'Authorization: APIKey {info["key"]}' \\
       -H 'Content-Type: application/json' -d '{{"stampIdx": {info["stamp_idx"]}}}'
  curl -s '{base}/api/stamp/v1/validate?stampIdx={info["stamp_idx"]}' \\
       -H 'Authorization: APIKey {info["key"]}'
"""
    )


def _owner_line(info: dict[str, Any]) -> str:
    if info.get("owner_password"):
        return f"(sign in: {info['owner_email']} / {info['owner_password']})"
    return f"(owner {DEMO_OWNER}: `stampbook user set-password {DEMO_OWNER}`)"


def _load_demo(settings: Settings) -> dict[str, Any] | None:
    try:
        saved: dict[str, Any] = json.loads(DEMO_FILE.read_text())
    except (OSError, ValueError):
        return None
    return saved if saved.get("database_url") == settings.database_url else None
