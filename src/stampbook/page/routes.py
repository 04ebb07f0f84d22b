"""The customer stamp page (``/s/{token}``), its QR code, the customer PIN and
the staff's on-site actions. Server-rendered HTML; no JavaScript.

Routes stay thin: they read the form, check its CSRF token, call one page
service (``service``, ``pin``, ``staff``: each owns its transaction) and
render. Request and cookie plumbing is ``web``. Every answer, errors
included, is an HTML page with the security headers; the API's JSON
envelope never shows here.
"""

from __future__ import annotations

import io

import segno
from fastapi import APIRouter, Request
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.responses import Response

from stampbook.kit.errors import Code, StampbookError, message_for
from stampbook.kit.remote import client_address
from stampbook.kit.runtime import Runtime
from stampbook.page import service
from stampbook.page.pin import PinRefusal, submit_pin
from stampbook.page.service import Loaded
from stampbook.page.staff import run_staff_action
from stampbook.page.web import (
    PageRoute,
    Visit,
    number_field,
    plain_page,
    raw_field,
    secure,
    start,
    static_files,
    text_field,
)
from stampbook.stamps.views import stamp_url

# The app mounts these two from here.
__all__ = ["plain_page", "router", "static_files"]

# Statuses of the page's refusals (the API answers them as HTTP 200 codes;
# a page can say what happened with its status too).
_REFUSAL_STATUS = {
    Code.ONSITE_PASSWORD_WRONG: 403,
    Code.ONSITE_NOT_ENABLED: 403,
    Code.ONSITE_LOCKED: 429,
    Code.INVALID_PARAMETER: 400,
}
_PIN_STATUS = {
    PinRefusal.FORMAT: 400,
    PinRefusal.MISMATCH: 400,
    PinRefusal.TAKEN: 409,
    PinRefusal.WRONG: 403,
    PinRefusal.LOCKED: 429,
}
DONE_NOTICES = {
    "added": "done_added",
    "redeemed": "done_redeemed",
    "pin_set": "pin_saved",
    "code": "done_code",
    "enrolled": "done_enrolled",
}

router = APIRouter(route_class=PageRoute, include_in_schema=False, tags=["page"])


# --- what the pages look like ------------------------------------------------------


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
    is_unlocked = visit.unlocked(loaded.row.token, loaded.row.pin_hash)
    card = service.view(visit.runtime, loaded, unlocked=is_unlocked)
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
        # The wallets' buttons, only for a configured wallet (docs/wallet.md).
        wallet_apple=visit.runtime.settings.apple_wallet,
        wallet_google=visit.runtime.settings.google_wallet,
        notice=notice,
        error=error,
    )


def staff_page(
    visit: Visit, loaded: Loaded, *, status: int = 200, error: str | None = None
) -> Response:
    """The staff's page: the card, the on-site password and the one action that fits."""
    card = service.view(visit.runtime, loaded)
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


def staff_refused(visit: Visit, loaded: Loaded, refusal: StampbookError) -> Response:
    """The staff page again, saying why the action was refused."""
    status = _REFUSAL_STATUS.get(refusal.code, 409)
    response = staff_page(visit, loaded, status=status, error=refusal.message(visit.lang))
    if status == 429:
        response.headers["Retry-After"] = str(visit.runtime.settings.lockout_minutes * 60)
    return response


# --- the customer's card -----------------------------------------------------------


@router.api_route("/s/{token}", methods=["GET", "HEAD"])
async def stamp_page(request: Request, token: str) -> Response:
    """The customer's stamp card."""
    visit = await start(request)
    loaded = await service.load(visit.runtime, token)
    if loaded is None:
        return visit.not_found()
    done = DONE_NOTICES.get(request.query_params.get("done", ""))
    # The browser now holds this card: a receipt code of its shop offers it.
    visit.remember_card(loaded.row.token)
    return card_page(visit, loaded, notice=visit.t(done) if done else None)


async def _customer_form(request: Request, token: str) -> tuple[Visit, Loaded, FormData] | Response:
    """Begin a customer's form post: the visit, the stamp and the form with its CSRF
    token checked; or the response that ends it (404, or the card saying the form
    expired)."""
    visit = await start(request)
    loaded = await service.load(visit.runtime, token)
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
    outcome = await submit_pin(
        visit.runtime, loaded, pin=text_field(form, "pin"), again=text_field(form, "pin2")
    )
    if outcome.loaded is None:
        return visit.not_found()
    stamp_token = outcome.loaded.row.token
    if outcome.pin_hash is not None:
        visit.open_session(stamp_token, outcome.pin_hash)
        return visit.redirect(
            f"/s/{stamp_token}?done=pin_set" if outcome.chosen else f"/s/{stamp_token}"
        )
    assert outcome.refusal is not None
    if outcome.refusal == PinRefusal.LOCKED:
        error = visit.t(outcome.refusal, minutes=outcome.locked_minutes)
    elif outcome.refusal == PinRefusal.WRONG:
        error = visit.t(outcome.refusal, n=outcome.tries_left)
    else:
        error = visit.t(outcome.refusal)
    response = card_page(visit, outcome.loaded, status=_PIN_STATUS[outcome.refusal], error=error)
    if outcome.refusal == PinRefusal.LOCKED:
        response.headers["Retry-After"] = str(outcome.locked_minutes * 60)
    return response


@router.post("/s/{token}/hide")
async def hide(request: Request, token: str) -> Response:
    """Forget the entered PIN on this browser."""
    started = await _customer_form(request, token)
    if isinstance(started, Response):
        return started
    visit = started[0]
    visit.close_session(token)
    return visit.redirect(f"/s/{token}")


# --- the staff's page ----------------------------------------------------------------


@router.api_route("/s/{token}/staff", methods=["GET", "HEAD"])
async def staff(request: Request, token: str) -> Response:
    """The staff's on-site page."""
    visit = await start(request)
    loaded = await service.load(visit.runtime, token, page_address=client_address(request.scope))
    if loaded is None:
        return visit.not_found()
    return staff_page(visit, loaded, status=200 if loaded.row.onsite_yn == "Y" else 403)


@router.post("/s/{token}/staff")
async def staff_action(request: Request, token: str) -> Response:
    """Add one stamp, or redeem a complete card, with the card's on-site password."""
    visit = await start(request)
    address = client_address(request.scope)
    form = await request.form()
    if not visit.csrf_ok(form, token):
        loaded = await service.load(visit.runtime, token, page_address=address)
        if loaded is None:
            return visit.not_found()
        return staff_page(visit, loaded, status=403, error=visit.t("form_expired"))
    action = text_field(form, "action")
    try:
        expected = number_field(form, "expect")
    except StampbookError as exc:
        # Refused before any transaction: nothing to count.
        loaded = await service.load(visit.runtime, token, page_address=address)
        if loaded is None:
            return visit.not_found()
        return staff_refused(visit, loaded, exc)
    outcome = await run_staff_action(
        visit.runtime,
        token,
        action=action,
        password=raw_field(form, "password"),
        expected_stamps=expected,
        page_address=address,
    )
    if outcome.done:
        done = "redeemed" if action == service.ONSITE_REDEEM else "added"
        return visit.redirect(f"/s/{token}?done={done}")
    if outcome.loaded is None:
        return visit.not_found()
    if outcome.stale:
        return staff_page(visit, outcome.loaded, status=409, error=visit.t("staff_stale"))
    assert outcome.refusal is not None
    return staff_refused(visit, outcome.loaded, outcome.refusal)


# --- the QR code -------------------------------------------------------------------


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
    loaded = await service.load(runtime, token)
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
