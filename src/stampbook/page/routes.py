"""The customer stamp page (``/s/{token}``), its QR code, the customer PIN and
the staff's on-site actions. Server-rendered HTML; no JavaScript.

Routes stay thin: they read the form, check its CSRF token, run the page
service in a transaction and render. Every answer, errors included, is an
HTML page with the security headers; the API's JSON envelope never shows
here.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import segno
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from sqlalchemy import Row
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from stampbook.kit.clock import utc_naive
from stampbook.kit.context import SOURCE_ONSITE, zone_for
from stampbook.kit.errors import Code, StampbookError, message_for
from stampbook.kit.i18n import SUPPORTED, negotiate
from stampbook.kit.params import strict_decimal
from stampbook.kit.remote import client_address
from stampbook.kit.runtime import Runtime
from stampbook.page import repository as page_repo
from stampbook.page import service
from stampbook.page.text import LANGUAGE_NAMES, pick_language, text
from stampbook.stamps import onsite
from stampbook.stamps.views import stamp_url

log = logging.getLogger("stampbook.page")

STATIC_DIR = Path(__file__).parent / "static"
COOKIE_SESSION = "sb_pin"  # Path=/s/{token}: sent to that stamp's page only
COOKIE_CSRF = "sb_csrf"
COOKIE_LANG = "sb_lang"
LANG_COOKIE_SECONDS = 365 * 24 * 3600
CSP = (
    "default-src 'none'; img-src {img}; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_HOST_PORT = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")
# Statuses of the page's refusals (the API answers them as HTTP 200 codes;
# a page can say what happened with its status too).
_REFUSAL_STATUS = {
    Code.ONSITE_PASSWORD_WRONG: 403,
    Code.ONSITE_NOT_ENABLED: 403,
    Code.ONSITE_LOCKED: 429,
    Code.INVALID_PARAMETER: 400,
}
DONE_NOTICES = {"added": "done_added", "redeemed": "done_redeemed", "pin_set": "pin_saved"}

_templates = Environment(
    loader=PackageLoader("stampbook.page", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def static_files() -> StaticFiles:
    """The page's static files (stylesheet, the built-in stamp mark), mounted at /static."""
    return StaticFiles(directory=STATIC_DIR)


# --- every response of the page ---------------------------------------------------


def secure(response: Response, *, image_url: str | None = None) -> Response:
    """Add the page's security headers: a strict CSP (no scripts at all), no
    referrer (the URL holds the token), no caching, no framing."""
    img = "'self' data: https:"
    if image_url and image_url.startswith("http://"):
        # A card's own stamp image over plain http: allow exactly its origin.
        netloc = urlsplit(image_url).netloc
        if _HOST_PORT.fullmatch(netloc):
            img += f" http://{netloc}"
    headers = response.headers
    headers["Content-Security-Policy"] = CSP.format(img=img)
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Cache-Control"] = "no-store"
    headers["X-Robots-Tag"] = "noindex, nofollow"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
    return response


@dataclass(slots=True)
class Visit:
    """One page request: its language, signer and this browser's CSRF identity."""

    request: Request
    runtime: Runtime
    lang: str
    signer: service.Signer
    browser_id: str
    cookies: list[tuple[str, str, str, int | None]] = field(default_factory=list)

    @property
    def secure_cookies(self) -> bool:
        """Mark cookies Secure when the public URL is https, even though the
        request itself arrives over http from a TLS proxy on another host (or
        when it does arrive over https)."""
        return (
            self.runtime.settings.public_url.startswith("https://")
            or self.request.url.scheme == "https"
        )

    def t(self, key: str, **values: Any) -> str:
        """A phrase in this visit's language."""
        return text(self.lang, key, **values)

    def set_cookie(self, name: str, value: str, *, path: str, max_age: int | None) -> None:
        """Remember a cookie to send with whatever response goes out."""
        self.cookies.append((name, value, path, max_age))

    def finish(self, response: Response, *, image_url: str | None = None) -> Response:
        """Attach cookies and security headers."""
        for name, value, path, max_age in self.cookies:
            if max_age == 0:
                response.delete_cookie(
                    name, path=path, secure=self.secure_cookies, httponly=True, samesite="lax"
                )
                continue
            response.set_cookie(
                name,
                value,
                max_age=max_age,
                path=path,
                secure=self.secure_cookies,
                httponly=True,
                samesite="strict" if name == COOKIE_CSRF else "lax",
            )
        return secure(response, image_url=image_url)

    def render(
        self,
        template: str,
        *,
        status: int = 200,
        token: str | None = None,
        image_url: str | None = None,
        **context: Any,
    ) -> Response:
        """Render a template in this visit's language."""
        html = _templates.get_template(template).render(
            t=self.t,
            lang=self.lang,
            languages=[(code, LANGUAGE_NAMES[code]) for code in SUPPORTED],
            csrf=self.signer.csrf(self.browser_id, token) if token else "",
            notice=context.pop("notice", None),
            error=context.pop("error", None),
            **context,
        )
        return self.finish(HTMLResponse(html, status_code=status), image_url=image_url)

    def redirect(self, location: str) -> Response:
        """See Other: after a successful form, the browser GETs the page (no resubmits)."""
        return self.finish(RedirectResponse(location, status_code=303))

    def message(self, status: int, heading_key: str, body_key: str) -> Response:
        """A plain page saying one thing (not found, error)."""
        return self.render(
            "message.html", status=status, heading=self.t(heading_key), body=self.t(body_key)
        )

    def not_found(self) -> Response:
        """The plain 404 page: the same for every wrong address, so it tells nothing."""
        return self.message(404, "not_found_title", "not_found_text")

    def csrf_ok(self, form: FormData, token: str) -> bool:
        """True when the form carries this browser's token for this stamp and was
        not sent from another site."""
        if self.request.headers.get("sec-fetch-site") == "cross-site":
            return False
        value = form.get("csrf")
        return self.signer.csrf_ok(
            value if isinstance(value, str) else None,
            self.request.cookies.get(COOKIE_CSRF),
            token,
        )


def _secret_cache(request: Request) -> dict[str, str]:
    state = request.app.state
    cache: dict[str, str] | None = getattr(state, "page_secret_cache", None)
    if cache is None:
        cache = {}
        state.page_secret_cache = cache
    return cache


def language_for(request: Request) -> str:
    """``?lang=``, then the remembered choice, then Accept-Language."""
    return pick_language(
        request.query_params.get("lang"),
        request.cookies.get(COOKIE_LANG),
        negotiate(request.headers.get("accept-language")),
    )


async def start(request: Request) -> Visit:
    """Begin a page request: language, signing key, CSRF cookie."""
    runtime: Runtime = request.app.state.runtime
    secret = await service.signing_secret(runtime, _secret_cache(request))
    browser_id = request.cookies.get(COOKIE_CSRF) or ""
    visit = Visit(
        request=request,
        runtime=runtime,
        lang=language_for(request),
        signer=service.Signer(secret),
        browser_id=browser_id,
    )
    if len(browser_id) < 16:
        visit.browser_id = service.new_browser_id()
        visit.set_cookie(COOKIE_CSRF, visit.browser_id, path="/s/", max_age=None)
    chosen = request.query_params.get("lang")
    if chosen in SUPPORTED:
        visit.set_cookie(COOKIE_LANG, chosen, path="/s/", max_age=LANG_COOKIE_SECONDS)
    return visit


# --- errors as pages ----------------------------------------------------------------


class PageRoute(APIRoute):
    """A route whose failures are HTML pages, not the API's JSON envelope."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler so that any failure renders a page."""
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError:
                return plain_page(request, 404, "not_found_title", "not_found_text")
            except StarletteHTTPException as exc:
                if exc.status_code == 404:
                    return plain_page(request, 404, "not_found_title", "not_found_text")
                return plain_page(request, exc.status_code, "error_title", "error_text")
            except StampbookError as exc:
                # 1902 (database unavailable) and the like keep their status;
                # a business refusal that reached here is a conflict.
                status = 409 if exc.http_status == 200 else exc.http_status
                return plain_page(request, status, "error_title", "error_text")
            except Exception:
                log.exception("stamp page failed on %s", request.method)
                return plain_page(request, 500, "error_title", "error_text")

        return page_handler


def plain_page(request: Request, status: int, heading_key: str, body_key: str) -> Response:
    """A message page that needs nothing from the database (not even the signing key)."""
    lang = language_for(request)
    html = _templates.get_template("message.html").render(
        t=partial(text, lang),
        lang=lang,
        languages=[(code, LANGUAGE_NAMES[code]) for code in SUPPORTED],
        csrf="",
        notice=None,
        error=None,
        heading=text(lang, heading_key),
        body=text(lang, body_key),
    )
    return secure(HTMLResponse(html, status_code=status))


router = APIRouter(route_class=PageRoute, include_in_schema=False, tags=["page"])


# --- reading -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Loaded:
    """A stamp row with the zone its dates are read in (and, for the staff page,
    when on-site actions unlock for this client)."""

    row: Row[Any]
    zone: str
    onsite_locked_until: datetime | None = None


async def load(runtime: Runtime, token: str, *, staff_of: Request | None = None) -> Loaded | None:
    """The stamp behind ``token`` in a read transaction, or None; with
    ``staff_of``, also the on-site lock that request's client is under."""
    async with runtime.db.read() as conn:
        row = await service.find(conn, token)
        if row is None:
            return None
        zone = await service.zone_name(conn, runtime, row)
        locked_until = None
        if staff_of is not None and row.onsite_yn == "Y":
            locked_until = await onsite.page_locked_until(
                conn,
                card_idx=row.card_idx,
                page_address=client_address(staff_of.scope),
                now=utc_naive(runtime.clock.now()),
            )
    return Loaded(row, zone, locked_until)


def view(visit: Visit, loaded: Loaded, *, unlocked: bool = False) -> service.Card:
    """The page's picture of a loaded stamp, as of now."""
    clock = visit.runtime.clock
    return service.card_view(
        loaded.row,
        today=clock.today(zone_for(loaded.zone)),
        now=utc_naive(clock.now()),
        public_url=visit.runtime.settings.public_url,
        unlocked=unlocked,
        onsite_locked_until=loaded.onsite_locked_until,
    )


def unlocked(visit: Visit, row: Any) -> bool:
    """True when this browser entered (or chose) the stamp's current PIN lately."""
    return visit.signer.session_ok(
        visit.request.cookies.get(COOKIE_SESSION), row.token, row.pin_hash
    )


def qr_code(url: str) -> segno.QRCode:
    """The QR code of a stamp page's URL."""
    return segno.make(url, error="m", micro=False)


def card_page(
    visit: Visit,
    loaded: Loaded,
    *,
    status: int = 200,
    notice: str | None = None,
    error: str | None = None,
) -> Response:
    """The customer's stamp page."""
    is_unlocked = unlocked(visit, loaded.row)
    card = view(visit, loaded, unlocked=is_unlocked)
    svg = qr_code(card.page_url).svg_inline(
        scale=4,
        dark="#1c1917",
        light="#ffffff",
        title=visit.t("qr_alt"),
        svgclass="qr-svg",
        omitsize=True,
    )
    return visit.render(
        "card.html",
        status=status,
        token=card.token,
        image_url=card.image_url,
        card=card,
        card_level=1,
        unlocked=is_unlocked,
        qr_svg=Markup(svg),
        notice=notice,
        error=error,
    )


def staff_page(
    visit: Visit, loaded: Loaded, *, status: int = 200, error: str | None = None
) -> Response:
    """The staff's page: the card, the on-site password and the one action that fits."""
    card = view(visit, loaded)
    return visit.render(
        "staff.html",
        status=status,
        token=card.token,
        image_url=card.image_url,
        card=card,
        card_level=2,
        not_enabled=message_for(Code.ONSITE_NOT_ENABLED, visit.lang),
        error=error,
    )


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _number_field(form: FormData, name: str) -> int | None:
    """A whole-number form field (None when absent or empty), by the same strict
    rule as the API's query integers, not even trimmed; anything else is 1001
    naming it (a 400 page)."""
    value = form.get(name)
    if not isinstance(value, str) or not value:
        return None
    try:
        return strict_decimal(value)
    except ValueError as exc:
        raise StampbookError(Code.INVALID_PARAMETER, param=name) from exc


# --- the routes ------------------------------------------------------------------------


@router.api_route("/s/{token}", methods=["GET", "HEAD"])
async def stamp_page(request: Request, token: str) -> Response:
    """The customer's stamp card."""
    visit = await start(request)
    loaded = await load(visit.runtime, token)
    if loaded is None:
        return visit.not_found()
    done = DONE_NOTICES.get(request.query_params.get("done", ""))
    return card_page(visit, loaded, notice=visit.t(done) if done else None)


async def _customer_form(request: Request, token: str) -> tuple[Visit, Loaded, FormData] | Response:
    """Begin a customer's form post: the visit, the stamp and the form with its CSRF
    token checked; or the response that ends it (404, or the card saying the form
    expired)."""
    visit = await start(request)
    loaded = await load(visit.runtime, token)
    if loaded is None:
        return visit.not_found()
    form = await request.form()
    if not visit.csrf_ok(form, token):
        return card_page(visit, loaded, status=403, error=visit.t("form_expired"))
    return visit, loaded, form


@router.post("/s/{token}/pin")
async def pin(request: Request, token: str) -> Response:
    """Choose the PIN (first visit) or enter it (later visits)."""
    started = await _customer_form(request, token)
    if isinstance(started, Response):
        return started
    visit, loaded, form = started
    entered = _field(form, "pin")
    if loaded.row.pin_hash is None:
        return await _choose_pin(visit, loaded, entered, _field(form, "pin2"))
    return await _enter_pin(visit, loaded, entered)


async def _choose_pin(visit: Visit, loaded: Loaded, entered: str, again: str) -> Response:
    if not service.pin_format_ok(entered):
        return card_page(visit, loaded, status=400, error=visit.t("pin_format"))
    if entered != again:
        return card_page(visit, loaded, status=400, error=visit.t("pin_mismatch"))
    pin_hash = await service.hash_pin(entered)
    async with visit.runtime.db.write() as conn:
        stored = await page_repo.set_pin_if_unset(
            conn, stamp_idx=loaded.row.stamp_idx, pin_hash=pin_hash
        )
    if not stored:
        fresh = await load(visit.runtime, loaded.row.token)
        if fresh is None:
            return visit.not_found()
        return card_page(visit, fresh, status=409, error=visit.t("pin_taken"))
    _open_session(visit, loaded.row.token, pin_hash)
    return visit.redirect(f"/s/{loaded.row.token}?done=pin_set")


async def _enter_pin(visit: Visit, loaded: Loaded, entered: str) -> Response:
    settings = visit.runtime.settings
    if not service.pin_format_ok(entered):
        # Not counted: the format is no secret, and a typo should not cost a try.
        return card_page(visit, loaded, status=400, error=visit.t("pin_format"))
    token = loaded.row.token
    async with visit.runtime.db.write() as conn:
        row = await service.find(conn, token, for_update=True)
        if row is None:
            return visit.not_found()
        attempt = await service.count_pin_attempt(
            conn,
            row,
            now=utc_naive(visit.runtime.clock.now()),
            limit=settings.lockout_failures,
            lock_minutes=settings.lockout_minutes,
        )
    if attempt.allowed:
        assert attempt.pin_hash is not None
        if await service.pin_matches(attempt.pin_hash, entered):
            async with visit.runtime.db.write() as conn:
                await page_repo.clear_pin_failures(
                    conn, stamp_idx=row.stamp_idx, pin_hash=attempt.pin_hash
                )
            _open_session(visit, token, attempt.pin_hash)
            return visit.redirect(f"/s/{token}")
    fresh = await load(visit.runtime, token)
    if fresh is None:
        return visit.not_found()
    if attempt.locked_minutes:
        response = card_page(
            visit, fresh, status=429, error=visit.t("pin_locked", minutes=attempt.locked_minutes)
        )
        response.headers["Retry-After"] = str(attempt.locked_minutes * 60)
        return response
    left = max(settings.lockout_failures - attempt.failures, 0)
    return card_page(visit, fresh, status=403, error=visit.t("pin_wrong_left", n=left))


def _open_session(visit: Visit, token: str, pin_hash: str) -> None:
    visit.set_cookie(
        COOKIE_SESSION,
        visit.signer.session(token, pin_hash),
        path=f"/s/{token}",
        max_age=service.PIN_SESSION_SECONDS,
    )


@router.post("/s/{token}/hide")
async def hide(request: Request, token: str) -> Response:
    """Forget the entered PIN on this browser."""
    started = await _customer_form(request, token)
    if isinstance(started, Response):
        return started
    visit = started[0]
    visit.set_cookie(COOKIE_SESSION, "", path=f"/s/{token}", max_age=0)
    return visit.redirect(f"/s/{token}")


@router.api_route("/s/{token}/staff", methods=["GET", "HEAD"])
async def staff(request: Request, token: str) -> Response:
    """The staff's on-site page."""
    visit = await start(request)
    loaded = await load(visit.runtime, token, staff_of=request)
    if loaded is None:
        return visit.not_found()
    return staff_page(visit, loaded, status=200 if loaded.row.onsite_yn == "Y" else 403)


@router.post("/s/{token}/staff")
async def staff_action(request: Request, token: str) -> Response:
    """Add one stamp, or redeem a complete card, with the card's on-site password."""
    visit = await start(request)
    form = await request.form()
    if not visit.csrf_ok(form, token):
        loaded = await load(visit.runtime, token, staff_of=request)
        if loaded is None:
            return visit.not_found()
        return staff_page(visit, loaded, status=403, error=visit.t("form_expired"))
    action = _field(form, "action")
    outcome: StampbookError | str
    try:
        expected = _number_field(form, "expect")
    except StampbookError as exc:
        outcome = exc  # refused before any transaction: nothing to count
    else:
        password = form.get("password")  # as typed: a password may hold spaces
        outcome = await _run_staff_action(
            visit,
            token,
            action=action,
            password=password if isinstance(password, str) else "",
            expected_stamps=expected,
        )
    if outcome == _DONE:
        done = "redeemed" if action == service.ONSITE_REDEEM else "added"
        return visit.redirect(f"/s/{token}?done={done}")
    loaded = None if outcome == _MISSING else await load(visit.runtime, token, staff_of=request)
    if loaded is None:
        return visit.not_found()
    if outcome == _STALE:
        return staff_page(visit, loaded, status=409, error=visit.t("staff_stale"))
    assert isinstance(outcome, StampbookError)
    status = _REFUSAL_STATUS.get(outcome.code, 409)
    response = staff_page(visit, loaded, status=status, error=outcome.message(visit.lang))
    if status == 429:
        response.headers["Retry-After"] = str(visit.runtime.settings.lockout_minutes * 60)
    return response


_DONE, _STALE, _MISSING = "done", "stale", "missing"


async def _run_staff_action(
    visit: Visit, token: str, *, action: str, password: str, expected_stamps: int | None
) -> StampbookError | str:
    """Run one staff action in its own transaction: ``_DONE``, ``_STALE`` (the
    card changed since the form was shown), ``_MISSING``, or the refusal."""
    async with visit.runtime.db.write() as conn:
        row = await service.find(conn, token, for_update=True)
        if row is None:
            return _MISSING
        zone = await service.zone_name(conn, visit.runtime, row)
        ctx = service.context_for(visit.runtime, row, zone, source=SOURCE_ONSITE)
        try:
            await service.onsite_action(
                conn,
                ctx,
                row,
                action=action,
                password=password,
                expected_stamps=expected_stamps,
                client_address=client_address(visit.request.scope),
            )
        except StampbookError as exc:
            if exc.http_status != 200 and exc.code != Code.INVALID_PARAMETER:
                raise
            # Committed on purpose, like the API's refusals: a wrong password
            # must stay counted so that guessing locks out.
            return exc
        except service.StaleFormError:
            return _STALE
    return _DONE


@router.api_route("/s/{token}/qr.svg", methods=["GET", "HEAD"])
async def qr_svg(request: Request, token: str) -> Response:
    """The page's QR code as SVG."""
    return await _qr(request, token, "svg")


@router.api_route("/s/{token}/qr.png", methods=["GET", "HEAD"])
async def qr_png(request: Request, token: str) -> Response:
    """The page's QR code as PNG (for printing on a receipt)."""
    return await _qr(request, token, "png")


async def _qr(request: Request, token: str, kind: str) -> Response:
    # An image: no cookies, no form, nothing but the code (it may be embedded
    # on the shop's own pages).
    runtime: Runtime = request.app.state.runtime
    loaded = await load(runtime, token)
    if loaded is None:
        return plain_page(request, 404, "not_found_title", "not_found_text")
    url = stamp_url(loaded.row, runtime.settings.public_url)
    buffer = io.BytesIO()
    if kind == "svg":
        qr_code(url).save(buffer, kind="svg", scale=8, dark="#000000", light="#ffffff")
        media_type = "image/svg+xml"
    else:
        qr_code(url).save(buffer, kind="png", scale=8, dark="#000000", light="#ffffff")
        media_type = "image/png"
    response = secure(Response(buffer.getvalue(), media_type=media_type))
    # A shop may show the code on its own site or receipt page.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@router.api_route(
    "/s/{rest:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
)
async def anything_else(request: Request, rest: str) -> Response:
    """Every other address under /s/ is the same plain 404 page."""
    return plain_page(request, 404, "not_found_title", "not_found_text")
