"""Signing in and out of the dashboard, and its front door."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from stampbook.accounts import sessions, signin, users
from stampbook.dashboard.web import (
    PREFIX,
    DashRoute,
    Desk,
    FormExpired,
    begin,
    login_desk,
    require,
    session_cookie_name,
)
from stampbook.kit.clock import utc_naive
from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.remote import client_address
from stampbook.page.web import raw_field, text_field

router = APIRouter(route_class=DashRoute, include_in_schema=False, tags=["dashboard"])

# Where a signed-in user lands: owners on the Overview; staff on Customers,
# the counter's page (a customer found and stamped in three screens).
HOME = {"owner": f"{PREFIX}/overview", "staff": f"{PREFIX}/customers"}


def _next_page(value: str) -> str:
    """Where to go after signing in: only a dashboard address of ours (else the
    front door, which knows the role)."""
    if value.startswith(f"{PREFIX}/") and not value.startswith("//") and "\\" not in value:
        return value
    return f"{PREFIX}/"


@router.api_route(PREFIX, methods=["GET", "HEAD"])
@router.api_route(f"{PREFIX}/", methods=["GET", "HEAD"])
async def home(request: Request) -> Response:
    """The dashboard's front door: the first section, or the sign-in page."""
    desk = await begin(request)
    return desk.redirect(HOME[desk.user.role] if desk.user else f"{PREFIX}/login")


@router.api_route(f"{PREFIX}/login", methods=["GET", "HEAD"])
async def login_page(request: Request) -> Response:
    """The sign-in form."""
    desk = await login_desk(request)
    if desk.user is not None:
        return desk.redirect(_next_page(request.query_params.get("next", "")))
    notice = desk.t("signed_out") if request.query_params.get("bye") else None
    return desk.render(
        "login.html", next=request.query_params.get("next", ""), email="", notice=notice
    )


@router.post(f"{PREFIX}/login")
async def login(request: Request) -> Response:
    """Check the email and password (throttled) and open a session."""
    desk = await login_desk(request)
    try:
        form = await desk.form()
    except FormExpired:
        return desk.render(
            "login.html", status=403, next="", email="", error=desk.t("form_expired_text")
        )
    email = text_field(form, "email")
    runtime = desk.runtime
    try:
        secret = await signin.sign_in(
            runtime.db,
            email=email,
            password=raw_field(form, "password"),
            address=client_address(request.scope),
            now=utc_naive(runtime.clock.now()),
            limits=signin.Limits.of(runtime.settings),
        )
    except StampbookError as exc:
        if exc.code not in (Code.SIGN_IN_FAILED, Code.SIGN_IN_LOCKED):
            raise
        locked = exc.code == Code.SIGN_IN_LOCKED
        response = desk.render(
            "login.html",
            status=429 if locked else 401,
            next=text_field(form, "next"),
            email=email,
            error=exc.message(desk.lang),
        )
        if locked:
            response.headers["Retry-After"] = str(runtime.settings.login_lock_minutes * 60)
        return response
    desk.set_cookie(session_cookie_name(desk.secure_cookies), secret, max_age=None)
    return desk.redirect(_next_page(text_field(form, "next")))


@router.post(f"{PREFIX}/logout")
async def logout(request: Request) -> Response:
    """End this session (in the database: the cookie is useless afterwards)."""
    desk = await begin(request)
    if desk.user is not None:
        await desk.form()
        cookie = request.cookies.get(session_cookie_name(desk.secure_cookies), "")
        async with desk.runtime.db.write() as conn:
            await sessions.end_session(conn, secret=cookie, now=utc_naive(desk.runtime.clock.now()))
    desk.set_cookie(session_cookie_name(desk.secure_cookies), "", max_age=0)
    return desk.redirect(f"{PREFIX}/login?bye=1")


@router.api_route(f"{PREFIX}/password", methods=["GET", "HEAD"])
async def password_page(desk: Desk = Depends(require("staff"))) -> Response:
    """Change one's own password."""
    done = desk.request.query_params.get("done")
    return desk.render("password.html", notice=desk.t("password_changed") if done else None)


@router.post(f"{PREFIX}/password")
async def change_password(request: Request, desk: Desk = Depends(require("staff"))) -> Response:
    """Check the current password, store the new one and end every session of
    this user (other browsers included); this browser gets a fresh one."""
    form = await desk.form()
    me = desk.me
    runtime = desk.runtime
    try:
        new_hash = await users.hash_password(users.check_password(raw_field(form, "new")))
        await signin.sign_in(
            runtime.db,
            email=me.email,
            password=raw_field(form, "current"),
            address=client_address(request.scope),
            now=utc_naive(runtime.clock.now()),
            limits=signin.Limits.of(runtime.settings),
            open_session=False,
        )
    except StampbookError as exc:
        if exc.code not in (Code.PASSWORD_TOO_SHORT, Code.SIGN_IN_FAILED, Code.SIGN_IN_LOCKED):
            raise
        return desk.render("password.html", status=409, error=exc.message(desk.lang))
    now = utc_naive(runtime.clock.now())
    async with runtime.db.write() as conn:
        await users.set_password(
            conn,
            account_idx=me.account_idx,
            user_idx=me.user_idx,
            password_hash=new_hash,
            now=now,
        )
        secret = await sessions.open_session(conn, user_idx=me.user_idx, now=now)
    desk.set_cookie(session_cookie_name(desk.secure_cookies), secret, max_age=None)
    return desk.redirect(f"{PREFIX}/password?done=1")
