"""The customer's page of a code, ``/c/{code}``: scanned from a receipt or the
till, it offers to add the code's stamps to a card this browser already
holds (one tap), or to get a new card with them. Server-rendered, works
without JavaScript, English and Korean; the stamp page's templates, CSS,
CSRF and signing (``page/web.py``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from stampbook.codes import customer
from stampbook.codes.service import STATE_LIVE
from stampbook.kit.errors import StampbookError
from stampbook.page.signing import digest
from stampbook.page.web import PageRoute, Visit, plain_page, start, text_field

router = APIRouter(route_class=PageRoute, include_in_schema=False, tags=["page"])

COOKIE_PATH = "/c/"
ACTION_ADD = "add"
ACTION_NEW = "new"


def _csrf_subject(code: str) -> str:
    # The form token is bound to this code (by fingerprint) and this browser.
    return f"code:{digest(code)}"


def code_page(
    visit: Visit,
    code: str,
    look: customer.CodeLook,
    *,
    status: int = 200,
    error: str | None = None,
) -> Response:
    """The code's page in its state: the offer when live, else why not."""
    return visit.render(
        "code.html",
        status=status,
        token=_csrf_subject(code),
        code=code,
        look=look,
        live=look.state == STATE_LIVE,
        addable=[held for held in look.held if held.can_add],
        error=error,
    )


def _not_found(visit: Visit) -> Response:
    return visit.message(404, "not_found_title", "code_not_found_text")


@router.api_route("/c/{code}", methods=["GET", "HEAD"])
async def code_view(request: Request, code: str) -> Response:
    """What a scanned code offers."""
    visit = await start(request, cookie_path=COOKIE_PATH)
    look = await customer.look(visit.runtime, code, visit.remembered_cards())
    if look is None:
        return _not_found(visit)
    return code_page(visit, code, look, status=200 if look.state == STATE_LIVE else 410)


@router.post("/c/{code}")
async def code_claim(request: Request, code: str) -> Response:
    """Claim the code: onto a held card (``action=add``, ``card``) or onto a new one."""
    visit = await start(request, cookie_path=COOKIE_PATH)
    look = await customer.look(visit.runtime, code, visit.remembered_cards())
    if look is None:
        return _not_found(visit)
    form = await request.form()
    if not visit.csrf_ok(form, _csrf_subject(code)):
        return code_page(visit, code, look, status=403, error=visit.t("form_expired"))
    action = text_field(form, "action")
    try:
        if action == ACTION_ADD:
            token = await customer.claim_onto(visit.runtime, code, text_field(form, "card"))
            done = "code"
        elif action == ACTION_NEW:
            token = await customer.get_card(visit.runtime, code)
            done = "enrolled"
        else:
            return code_page(visit, code, look, status=400, error=visit.t("form_expired"))
    except StampbookError as refusal:
        if refusal.http_status != 200:
            raise
        look = await customer.look(visit.runtime, code, visit.remembered_cards())
        assert look is not None
        reason = visit.t("code_refused", reason=refusal.message(visit.lang))
        return code_page(visit, code, look, status=409, error=reason)
    if token is None:
        return _not_found(visit)
    visit.remember_card(token)
    return visit.redirect(f"/s/{token}?done={done}")


@router.api_route(
    "/c/{rest:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
)
async def anything_else(request: Request, rest: str) -> Response:
    """Every other address under /c/ is the plain 404 page."""
    return plain_page(request, 404, "not_found_title", "not_found_text")
