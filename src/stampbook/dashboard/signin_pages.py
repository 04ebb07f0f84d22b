"""Signing in and out of the dashboard, and its front door."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from stampbook.accounts import sessions, signin
from stampbook.dashboard.web import (
    PREFIX,
    DashRoute,
    FormExpired,
    begin,
    login_desk,
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
