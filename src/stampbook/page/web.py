"""The page's request and cookie plumbing: the security headers every answer
carries, the language choice, the signed PIN-session and CSRF cookies, form
fields, redirects and the plain error page (failures are HTML pages, never
the API's JSON envelope nor a traceback)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.i18n import SUPPORTED, negotiate
from stampbook.kit.params import strict_decimal
from stampbook.kit.runtime import Runtime
from stampbook.page.signing import (
    CARDS_MAX_AGE_SECONDS,
    PIN_SESSION_SECONDS,
    Signer,
    new_browser_id,
    signing_secret,
)
from stampbook.page.text import LANGUAGE_NAMES, pick_language, text

log = logging.getLogger("stampbook.page")

STATIC_DIR = Path(__file__).parent / "static"
COOKIE_SESSION = "sb_pin"  # Path=/s/{token}: sent to that stamp's page only
COOKIE_CSRF = "sb_csrf"
COOKIE_LANG = "sb_lang"
# The stamp pages this browser opened (signed page tokens, newest first), so a
# receipt code (/c/{code}) can offer to add to the customer's card: Path=/.
COOKIE_CARDS = "sb_cards"
LANG_COOKIE_SECONDS = 365 * 24 * 3600
CSP = (
    "default-src 'none'; img-src {img}; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_HOST_PORT = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")

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


def language_for(request: Request) -> str:
    """``?lang=``, then the remembered choice, then Accept-Language."""
    return pick_language(
        request.query_params.get("lang"),
        request.cookies.get(COOKIE_LANG),
        negotiate(request.headers.get("accept-language")),
    )


def text_field(form: FormData, name: str) -> str:
    """A text form field, trimmed ("" when absent)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def raw_field(form: FormData, name: str) -> str:
    """A form field exactly as typed ("" when absent): a password may hold spaces."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def number_field(form: FormData, name: str) -> int | None:
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


@dataclass(slots=True)
class Visit:
    """One page request: its language, signer and this browser's CSRF identity."""

    request: Request
    runtime: Runtime
    lang: str
    signer: Signer
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

    def unlocked(self, token: str, pin_hash: str | None) -> bool:
        """True when this browser entered (or chose) the stamp's current PIN lately."""
        return self.signer.session_ok(self.request.cookies.get(COOKIE_SESSION), token, pin_hash)

    def open_session(self, token: str, pin_hash: str) -> None:
        """Remember on this browser that the PIN ``pin_hash`` was entered for this stamp."""
        self.set_cookie(
            COOKIE_SESSION,
            self.signer.session(token, pin_hash),
            path=f"/s/{token}",
            max_age=PIN_SESSION_SECONDS,
        )

    def remembered_cards(self) -> list[str]:
        """The page tokens of the stamp cards this browser opened, newest first."""
        return self.signer.cards_of(self.request.cookies.get(COOKIE_CARDS))

    def remember_card(self, token: str) -> None:
        """Remember on this browser that it holds the stamp card ``token``."""
        tokens = [token, *(other for other in self.remembered_cards() if other != token)]
        self.set_cookie(
            COOKIE_CARDS, self.signer.cards(tokens), path="/", max_age=CARDS_MAX_AGE_SECONDS
        )

    def close_session(self, token: str) -> None:
        """Forget the entered PIN on this browser."""
        self.set_cookie(COOKIE_SESSION, "", path=f"/s/{token}", max_age=0)

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


async def start(request: Request, *, cookie_path: str = "/s/") -> Visit:
    """Begin a page request: language, signing key, CSRF cookie (sent back to
    the pages under ``cookie_path``: ``/s/`` for stamp pages, ``/c/`` for codes)."""
    runtime: Runtime = request.app.state.runtime
    secret = await signing_secret(runtime, _secret_cache(request))
    browser_id = request.cookies.get(COOKIE_CSRF) or ""
    visit = Visit(
        request=request,
        runtime=runtime,
        lang=language_for(request),
        signer=Signer(secret),
        browser_id=browser_id,
    )
    if len(browser_id) < 16:
        visit.browser_id = new_browser_id()
        visit.set_cookie(COOKIE_CSRF, visit.browser_id, path=cookie_path, max_age=None)
    chosen = request.query_params.get("lang")
    if chosen in SUPPORTED:
        visit.set_cookie(COOKIE_LANG, chosen, path=cookie_path, max_age=LANG_COOKIE_SECONDS)
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
