"""The dashboard's request plumbing: who is signed in (``Desk``), the role
guard, the session and CSRF cookies, forms with their CSRF and Origin checks,
double-submit tokens, rendering, and failures as pages.

It reuses the stamp page's pieces (``page.web``: security headers, language
choice, form fields; ``page.signing``: the server's signing key and the
signed CSRF tokens); only what differs is here: a script may run (htmx,
from our own origin), the session is a database row, not a signed cookie.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from stampbook.accounts import sessions
from stampbook.accounts.sessions import SignedIn
from stampbook.dashboard.nav import sections_for
from stampbook.dashboard.text import text
from stampbook.kit.clock import utc_naive
from stampbook.kit.context import SOURCE_DASHBOARD, CallContext, zone_for
from stampbook.kit.errors import StampbookError
from stampbook.kit.i18n import LANGUAGE_NAMES, SUPPORTED
from stampbook.kit.runtime import Runtime
from stampbook.page.signing import Signer, new_browser_id, signing_secret
from stampbook.page.web import language_for, secure

log = logging.getLogger("stampbook.dashboard")

PREFIX = "/dashboard"
STATIC_DIR = Path(__file__).parent / "static"
COOKIE_LOGIN_CSRF = "sb_dash_csrf"
COOKIE_LANG = "sb_dash_lang"
LANG_COOKIE_SECONDS = 365 * 24 * 3600
# The session's CSRF tokens are bound to the session, the sign-in form's to a
# random cookie of this browser; both are signed with this purpose.
CSRF_PURPOSE = "dashboard"
CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data: https:; "
    "style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Sec-Fetch-Site values a form post may carry: our own pages, or typed/bookmarked.
_SAME_SITE_FETCH = ("same-origin", "none")

_templates = Environment(
    loader=ChoiceLoader(
        [
            PackageLoader("stampbook.dashboard", "templates"),
            # The customer's card as the page draws it (``_card.html``).
            PackageLoader("stampbook.page", "templates"),
        ]
    ),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def static_files() -> StaticFiles:
    """The dashboard's stylesheet and the vendored htmx, mounted at /dashboard/static."""
    return StaticFiles(directory=STATIC_DIR)


def session_cookie_name(secure_cookies: bool) -> str:
    """``__Host-sb_session`` over https (bound to this exact host, path /, Secure);
    plain ``sb_session`` over http, where browsers refuse the prefix."""
    return "__Host-sb_session" if secure_cookies else "sb_session"


class SignInNeeded(Exception):
    """No live session: the browser is sent to the sign-in page."""


class Forbidden(Exception):
    """Signed in, but the role may not open this page (403 page)."""


class NotFound(Exception):
    """Nothing here for this account (404 page): also another account's id."""


class FormExpired(Exception):
    """A form without a valid CSRF token, or sent from another site (403 page)."""


@dataclass(slots=True)
class Desk:
    """One dashboard request: language, signer, cookies and, once signed in, who."""

    request: Request
    runtime: Runtime
    lang: str
    signer: Signer
    user: SignedIn | None = None
    cookies: list[tuple[str, str, int | None]] = field(default_factory=list)

    @property
    def me(self) -> SignedIn:
        """The signed-in user (routes behind the guard always have one)."""
        if self.user is None:
            raise SignInNeeded
        return self.user

    @property
    def secure_cookies(self) -> bool:
        """Secure cookies when the public URL or the request is https."""
        return (
            self.runtime.settings.public_url.startswith("https://")
            or self.request.url.scheme == "https"
        )

    @property
    def zone(self) -> ZoneInfo:
        """The account's time zone: every date the dashboard shows is in it."""
        name = self.user.timezone if self.user else None
        return zone_for(name or self.runtime.settings.timezone)

    def t(self, key: str, **values: Any) -> str:
        """A phrase in this request's language."""
        return text(self.lang, key, **values)

    def local(self, value: datetime | None, *, with_time: bool = True) -> str:
        """A stored (naive UTC) instant in the account's zone, as the dashboard prints it."""
        if value is None:
            return "–"
        aware = value.replace(tzinfo=ZoneInfo("UTC")).astimezone(self.zone)
        return aware.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")

    def context(self, *, once: str | None = None) -> CallContext:
        """The service-call context of a dashboard write: the account, source
        DASHBOARD and the user, written on every ledger row."""
        me = self.me
        settings = self.runtime.settings
        return CallContext(
            account_idx=me.account_idx,
            zone=self.zone,
            now=self.runtime.clock.now(),
            public_url=settings.public_url,
            source=SOURCE_DASHBOARD,
            user_idx=me.user_idx,
            idempotency_key=f"dashboard:{once}" if once else None,
            lockout_failures=settings.lockout_failures,
            lockout_minutes=settings.lockout_minutes,
            lockout_address_failures=settings.lockout_address_failures,
            wallet=settings.wallet,
        )

    @property
    def csrf_subject(self) -> str:
        """What this browser's CSRF tokens are bound to: the session, or before
        sign-in the random login cookie."""
        if self.user is not None:
            return self.user.session_hash
        return self.request.cookies.get(COOKIE_LOGIN_CSRF) or ""

    def set_cookie(self, name: str, value: str, *, max_age: int | None) -> None:
        """Remember a cookie to send with the response (path /, HttpOnly, Lax)."""
        self.cookies.append((name, value, max_age))

    def finish(self, response: Response) -> Response:
        """Attach cookies and the security headers (the page's, with htmx allowed)."""
        for name, value, max_age in self.cookies:
            if max_age == 0:
                response.delete_cookie(
                    name, path="/", secure=self.secure_cookies, httponly=True, samesite="lax"
                )
            else:
                response.set_cookie(
                    name,
                    value,
                    max_age=max_age,
                    path="/",
                    secure=self.secure_cookies,
                    httponly=True,
                    samesite="lax",
                )
        return harden(response)

    def render(self, template: str, *, status: int = 200, **context: Any) -> Response:
        """Render a dashboard template in this request's language."""
        html = _templates.get_template(template).render(
            t=self.t,
            lang=self.lang,
            languages=[(code, LANGUAGE_NAMES[code]) for code in SUPPORTED],
            csrf=self.signer.csrf(self.csrf_subject, CSRF_PURPOSE) if self.csrf_subject else "",
            # A fresh double-submit token for each form on the page (forms.perform).
            once=lambda: secrets.token_urlsafe(16),
            me=self.user,
            nav=sections_for(self.user.is_owner) if self.user else [],
            local=self.local,
            path=self.request.url.path,
            notice=context.pop("notice", None),
            error=context.pop("error", None),
            **context,
        )
        return self.finish(HTMLResponse(html, status_code=status))

    def redirect(self, location: str) -> Response:
        """See Other (after a form: the browser GETs the next page)."""
        return self.finish(RedirectResponse(location, status_code=303))

    def message(self, status: int, heading: str, body: str) -> Response:
        """A page saying one thing (not found, forbidden, expired)."""
        return self.render("message.html", status=status, heading=heading, body=body)

    def same_site(self) -> bool:
        """False when the browser says the request comes from another site, or
        its Origin is not ours."""
        headers = self.request.headers
        fetch_site = headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site not in _SAME_SITE_FETCH:
            return False
        origin = headers.get("origin")
        if origin is None:
            return True  # old browsers, curl: the CSRF token still decides
        allowed = {_origin(self.runtime.settings.public_url), _origin(str(self.request.base_url))}
        return origin in allowed

    async def form(self) -> FormData:
        """The posted form, once its CSRF token and origin are checked."""
        form = await self.request.form()
        value = form.get("csrf")
        token = value if isinstance(value, str) else None
        if not self.same_site() or not self.signer.csrf_ok(token, self.csrf_subject, CSRF_PURPOSE):
            raise FormExpired
        return form


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def harden(response: Response) -> Response:
    """The stamp page's security headers, with a CSP that lets our own htmx run."""
    secure(response)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _secret_cache(request: Request) -> dict[str, str]:
    state = request.app.state
    cache: dict[str, str] | None = getattr(state, "page_secret_cache", None)
    if cache is None:
        cache = {}
        state.page_secret_cache = cache
    return cache


async def begin(request: Request) -> Desk:
    """Begin a dashboard request: language, signing key, the session if any."""
    runtime: Runtime = request.app.state.runtime
    secret = await signing_secret(runtime, _secret_cache(request))
    lang = language_for(request)
    remembered = request.cookies.get(COOKIE_LANG)
    if request.query_params.get("lang") is None and remembered in SUPPORTED:
        lang = remembered
    desk = Desk(request=request, runtime=runtime, lang=lang, signer=Signer(secret))
    chosen = request.query_params.get("lang")
    if chosen in SUPPORTED:
        desk.set_cookie(COOKIE_LANG, chosen, max_age=LANG_COOKIE_SECONDS)
    cookie = request.cookies.get(session_cookie_name(desk.secure_cookies))
    if cookie:
        settings = runtime.settings
        now = utc_naive(runtime.clock.now())
        async with runtime.db.read() as conn:
            desk.user = await sessions.resolve(
                conn,
                secret=cookie,
                now=now,
                idle=timedelta(minutes=settings.session_idle_minutes),
                absolute=timedelta(hours=settings.session_absolute_hours),
            )
        if desk.user is not None and sessions.needs_touch(desk.user, now):
            async with runtime.db.write() as conn:
                await sessions.touch(conn, user=desk.user, now=now)
    return desk


async def login_desk(request: Request) -> Desk:
    """A desk for the sign-in page: gives the browser its login CSRF cookie."""
    desk = await begin(request)
    if len(request.cookies.get(COOKIE_LOGIN_CSRF) or "") < 16:
        browser_id = new_browser_id()
        desk.set_cookie(COOKIE_LOGIN_CSRF, browser_id, max_age=None)
        # This response's form must already carry a token for the new cookie.
        desk.request.cookies[COOKIE_LOGIN_CSRF] = browser_id
    return desk


async def staff(request: Request) -> Desk:
    """Dependency: any signed-in user (owner or staff)."""
    desk = await begin(request)
    if desk.user is None:
        raise SignInNeeded
    return desk


async def owner(request: Request) -> Desk:
    """Dependency: an owner; staff get the 403 page."""
    desk = await staff(request)
    if not desk.me.is_owner:
        raise Forbidden
    return desk


def require(role: str) -> Callable[[Request], Awaitable[Desk]]:
    """The guard of a page: ``Depends(require("owner"))`` or ``require("staff")``."""
    return owner if role == "owner" else staff


class DashRoute(APIRoute):
    """A dashboard route: failures are pages (sign-in redirect, 403, 404), never JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler so that any failure renders a page."""
        handler = super().get_route_handler()

        async def dash_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInNeeded:
                target = quote(request.url.path, safe="/")
                return harden(RedirectResponse(f"{PREFIX}/login?next={target}", status_code=303))
            except (Forbidden, NotFound, FormExpired, RequestValidationError) as exc:
                return await _refusal_page(request, exc)
            except StarletteHTTPException as exc:
                return await _refusal_page(request, exc)
            except StampbookError as exc:
                if exc.http_status == 503:
                    return await _refusal_page(request, exc)
                raise
            except Exception:
                log.exception("dashboard failed on %s %s", request.method, request.url.path)
                return await _refusal_page(request, None)

        return dash_handler


async def _refusal_page(request: Request, exc: Exception | None) -> Response:
    """The page of a refusal, in the visitor's language."""
    status, key = 500, "error"
    if isinstance(exc, Forbidden):
        status, key = 403, "forbidden"
    elif isinstance(exc, FormExpired):
        status, key = 403, "form_expired"
    elif isinstance(exc, (NotFound, RequestValidationError)):
        status, key = 404, "not_found"
    elif isinstance(exc, StarletteHTTPException):
        status, key = (404, "not_found") if exc.status_code == 404 else (exc.status_code, "error")
    elif isinstance(exc, StampbookError):
        status, key = exc.http_status, "error"
    try:
        desk = await begin(request)
    except Exception:  # the database itself may be what failed
        desk = None
    if desk is None:
        lang = language_for(request)
        html = f"<!doctype html><html lang={lang}><title>{text(lang, key + '_title')}</title>"
        return harden(HTMLResponse(html + f"<p>{text(lang, key + '_text')}</p>", status))
    return desk.message(status, desk.t(key + "_title"), desk.t(key + "_text"))
