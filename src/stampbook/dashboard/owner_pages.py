"""The owner's pages: API keys (list, create shown once, revoke), users (add,
change role, disable) and the account's settings (time zone, the shop's
display name and logo, which the customer's stamp page shows). Staff opening
any of them get the 403 page; webhooks are ``webhook_pages.py``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from stampbook.accounts import service as accounts
from stampbook.accounts import settings as account_settings
from stampbook.accounts import users
from stampbook.dashboard.forms import perform, read
from stampbook.dashboard.web import PREFIX, DashRoute, Desk, NotFound, require
from stampbook.kit.context import CallContext
from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.schemas import storable_text
from stampbook.page.web import raw_field, text_field

router = APIRouter(route_class=DashRoute, include_in_schema=False, tags=["dashboard"])


# --- API keys ------------------------------------------------------------------------


async def _keys_page(desk: Desk, *, status: int = 200, **extra: Any) -> Response:
    async def work(conn: AsyncConnection, ctx: CallContext) -> list[dict[str, Any]]:
        return await accounts.list_keys_of(conn, account_idx=ctx.account_idx)

    return desk.render("keys.html", status=status, keys=await read(desk, work), **extra)


@router.api_route(f"{PREFIX}/keys", methods=["GET", "HEAD"])
async def keys(desk: Desk = Depends(require("owner"))) -> Response:
    """The account's API keys: prefix, name, created, last used (never the key)."""
    return await _keys_page(desk)


@router.post(f"{PREFIX}/keys")
async def create_key(desk: Desk = Depends(require("owner"))) -> Response:
    """Create a key; its secret is on this one answer only."""
    form = await desk.form()
    name = text_field(form, "name")[:100] or None

    async def work(conn: AsyncConnection, ctx: CallContext) -> accounts.CreatedKey:
        if name is not None and not storable_text(name):
            raise StampbookError(Code.INVALID_PARAMETER, param="name")
        return await accounts.create_key(
            conn, account_name=desk.me.account_name, now=ctx.now_naive, name=name
        )

    outcome = await perform(desk, form, work)
    if outcome.refusal is not None:
        return await _keys_page(desk, status=409, error=outcome.refusal.message(desk.lang))
    if outcome.value is None:
        return desk.redirect(f"{PREFIX}/keys")
    return await _keys_page(desk, created=outcome.value)


@router.post(f"{PREFIX}/keys/{{key_idx:int}}/revoke")
async def revoke_key(key_idx: int, desk: Desk = Depends(require("owner"))) -> Response:
    """Revoke a key of this account (another account's key is a 404)."""
    form = await desk.form()

    async def work(conn: AsyncConnection, ctx: CallContext) -> bool:
        return await accounts.revoke_key(
            conn, key_idx=key_idx, now=ctx.now_naive, account_idx=ctx.account_idx
        )

    outcome = await perform(desk, form, work)
    if outcome.value is False:
        raise NotFound
    return desk.redirect(f"{PREFIX}/keys?done=revoked")


# --- users ---------------------------------------------------------------------------


async def _users_page(desk: Desk, *, status: int = 200, **extra: Any) -> Response:
    async def work(conn: AsyncConnection, ctx: CallContext) -> list[users.User]:
        return await users.list_users(conn, account_idx=ctx.account_idx)

    done = desk.request.query_params.get("done")
    notice = desk.t("saved") if done else None
    return desk.render(
        "users.html", status=status, people=await read(desk, work), notice=notice, **extra
    )


@router.api_route(f"{PREFIX}/users", methods=["GET", "HEAD"])
async def users_page(desk: Desk = Depends(require("owner"))) -> Response:
    """The account's dashboard users."""
    return await _users_page(desk)


@router.post(f"{PREFIX}/users")
async def add_user(desk: Desk = Depends(require("owner"))) -> Response:
    """Add a user (staff by default) with a first password the owner hands over."""
    form = await desk.form()
    password = raw_field(form, "password")
    try:
        password_hash = await users.hash_password(users.check_password(password))
    except StampbookError as exc:
        return await _users_page(desk, status=409, error=exc.message(desk.lang))

    async def work(conn: AsyncConnection, ctx: CallContext) -> users.User:
        return await users.create_user(
            conn,
            account_idx=ctx.account_idx,
            email=text_field(form, "email"),
            role=text_field(form, "role") or users.ROLE_STAFF,
            password_hash=password_hash,
            now=ctx.now_naive,
        )

    outcome = await perform(desk, form, work)
    if outcome.refusal is not None:
        return await _users_page(desk, status=409, error=outcome.refusal.message(desk.lang))
    return desk.redirect(f"{PREFIX}/users?done=added")


@router.post(f"{PREFIX}/users/{{user_idx:int}}")
async def change_user(user_idx: int, desk: Desk = Depends(require("owner"))) -> Response:
    """Change a user's role, or disable (ending their sessions) or enable them."""
    form = await desk.form()
    change = text_field(form, "change")

    async def work(conn: AsyncConnection, ctx: CallContext) -> None:
        account_idx = ctx.account_idx
        if change == "disable":
            await users.disable_user(
                conn, account_idx=account_idx, user_idx=user_idx, now=ctx.now_naive
            )
        elif change == "enable":
            await users.enable_user(conn, account_idx=account_idx, user_idx=user_idx)
        else:
            await users.set_role(conn, account_idx=account_idx, user_idx=user_idx, role=change)

    outcome = await perform(desk, form, work)
    if outcome.refusal is not None:
        if outcome.refusal.code == Code.USER_NOT_FOUND:
            raise NotFound
        return await _users_page(desk, status=409, error=outcome.refusal.message(desk.lang))
    return desk.redirect(f"{PREFIX}/users?done=changed")


# --- settings ------------------------------------------------------------------------


@router.api_route(f"{PREFIX}/settings", methods=["GET", "HEAD"])
async def settings_page(desk: Desk = Depends(require("owner"))) -> Response:
    """The account's time zone, display name and logo."""
    me = desk.me
    saved = desk.request.query_params.get("done") == "saved"
    values = {
        "timezone": me.timezone or "",
        "displayName": me.display_name or "",
        "logoUrl": me.logo_url or "",
    }
    return desk.render(
        "settings.html",
        v=values,
        zones=account_settings.zone_names(),
        default_zone=desk.runtime.settings.timezone,
        notice=desk.t("saved") if saved else None,
    )


@router.post(f"{PREFIX}/settings")
async def save_settings(desk: Desk = Depends(require("owner"))) -> Response:
    """Save the time zone, display name and logo URL."""
    form = await desk.form()
    values = {
        "timezone": text_field(form, "timezone"),
        "displayName": text_field(form, "displayName"),
        "logoUrl": text_field(form, "logoUrl"),
    }

    async def work(conn: AsyncConnection, ctx: CallContext) -> None:
        await account_settings.save(
            conn,
            account_idx=ctx.account_idx,
            timezone=values["timezone"] or None,
            display_name=values["displayName"] or None,
            logo_url=values["logoUrl"] or None,
        )

    outcome = await perform(desk, form, work)
    if outcome.refusal is not None:
        return desk.render(
            "settings.html",
            status=409,
            v=values,
            zones=account_settings.zone_names(),
            default_zone=desk.runtime.settings.timezone,
            error=outcome.refusal.message(desk.lang),
        )
    return desk.redirect(f"{PREFIX}/settings?done=saved")
