"""The wallet's HTTP side: the pass and the Google link offered on the stamp
page, and Apple's PassKit web service under ``/wallet/apple/v1/``.

Mounted by the app only for a configured wallet (``apple_router``,
``google_router``); unconfigured, none of these paths exists. The web
service's statuses are Apple's (201/200/204/304/401); its bodies, when it
refuses, are the envelope, and malformed input is 400 naming the field.
"""

from __future__ import annotations

import re
from datetime import UTC
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Path, Query, Request
from starlette.responses import RedirectResponse, Response

from stampbook.kit.call import language_of, runtime_of
from stampbook.kit.envelope import JSONResponse, envelope
from stampbook.kit.errors import Code, message_for
from stampbook.page.web import PageRoute, plain_page
from stampbook.wallet import service
from stampbook.wallet.pkpass import IMAGES, MEDIA_TYPE, default_image

# Apple's identifiers and tokens: printable, no separators, bounded.
_IDENTIFIER = re.compile(r"[A-Za-z0-9._\-]{1,200}")
_MAX_BODY = 64 * 1024

page_apple_router = APIRouter(route_class=PageRoute, include_in_schema=False)
page_google_router = APIRouter(route_class=PageRoute, include_in_schema=False)
apple_router = APIRouter(prefix="/wallet/apple/v1", include_in_schema=False)
google_router = APIRouter(include_in_schema=False)


def _refuse(request: Request, status: int, code: Code, param: str | None = None) -> Response:
    message = message_for(code, language_of(request), param=param)
    return JSONResponse(envelope(code, message, None), status)


def _bad(request: Request, **values: str | None) -> Response | None:
    """400 naming the first value that is not an identifier Apple would send."""
    for name, value in values.items():
        if value is None or not _IDENTIFIER.fullmatch(value):
            return _refuse(request, 400, Code.INVALID_PARAMETER, name)
    return None


def _pass_response(found: service.PassFile, *, head: bool = False) -> Response:
    moment = found.updated_at.replace(microsecond=0)
    headers = {
        "Last-Modified": format_datetime(moment.replace(tzinfo=UTC), usegmt=True),
        "Cache-Control": "no-store",
        "Content-Disposition": 'attachment; filename="stamp-card.pkpass"',
    }
    if head:
        headers["Content-Length"] = str(len(found.data))
        return Response(None, 200, headers=headers, media_type=MEDIA_TYPE)
    return Response(found.data, 200, headers=headers, media_type=MEDIA_TYPE)


@page_apple_router.get("/s/{token}/pass.pkpass")
async def apple_pass(request: Request, token: str) -> Response:
    """The stamp card as an Apple Wallet pass."""
    found = await service.pass_for_page(runtime_of(request), token)
    if found is None:
        return plain_page(request, 404, "not_found_title", "not_found_text")
    return _pass_response(found)


@page_google_router.get("/s/{token}/google-wallet")
async def google_pass(request: Request, token: str) -> Response:
    """Save the stamp card to Google Wallet (a redirect to Google)."""
    link = await service.google_link(runtime_of(request), token)
    if link is None:
        return plain_page(request, 404, "not_found_title", "not_found_text")
    return RedirectResponse(link, 303, headers={"Cache-Control": "no-store"})


@google_router.get("/wallet/images/{name}")
async def image(request: Request, name: str) -> Response:
    """A built-in pass image (Google shows the icon as the program's logo)."""
    if name not in IMAGES:
        return _refuse(request, 404, Code.NO_SUCH_ENDPOINT)
    return Response(
        default_image(name),
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=86400"},
    )


_DEVICE = Annotated[str, Path(alias="device")]
_TYPE = Annotated[str, Path(alias="passType")]
_SERIAL = Annotated[str, Path(alias="serial")]
_AUTH = Annotated[str | None, Header(alias="Authorization")]


def _own_type(request: Request, pass_type: str) -> bool:
    return pass_type == runtime_of(request).settings.apple_pass_type_id


async def _json(request: Request) -> dict[str, Any] | None:
    body = await request.body()
    if len(body) > _MAX_BODY:
        return None
    try:
        found = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return found if isinstance(found, dict) else None


@apple_router.post("/devices/{device}/registrations/{passType}/{serial}")
async def register(
    request: Request, device: _DEVICE, pass_type: _TYPE, serial: _SERIAL, auth: _AUTH = None
) -> Response:
    """Register a device for a pass's updates: 201 new, 200 known, 401 refused."""
    body = await _json(request)
    token = body.get("pushToken") if body is not None else None
    bad = _bad(
        request,
        device=device,
        passType=pass_type,
        serial=serial,
        pushToken=token if isinstance(token, str) else None,
    )
    if bad is not None:
        return bad
    assert isinstance(token, str)
    if not _own_type(request, pass_type):
        return _refuse(request, 401, Code.UNAUTHORIZED)
    status = await service.register(
        runtime_of(request), device_id=device, serial=serial, authorization=auth, push_token=token
    )
    if status == 401:
        return _refuse(request, 401, Code.UNAUTHORIZED)
    return Response(None, status)


@apple_router.delete("/devices/{device}/registrations/{passType}/{serial}")
async def unregister(
    request: Request, device: _DEVICE, pass_type: _TYPE, serial: _SERIAL, auth: _AUTH = None
) -> Response:
    """Stop a device's updates for a pass."""
    bad = _bad(request, device=device, passType=pass_type, serial=serial)
    if bad is not None:
        return bad
    if not _own_type(request, pass_type):
        return _refuse(request, 401, Code.UNAUTHORIZED)
    status = await service.unregister(
        runtime_of(request), device_id=device, serial=serial, authorization=auth
    )
    if status == 401:
        return _refuse(request, 401, Code.UNAUTHORIZED)
    return Response(None, 200)


@apple_router.get("/devices/{device}/registrations/{passType}")
async def serials(
    request: Request,
    device: _DEVICE,
    pass_type: _TYPE,
    since: Annotated[str | None, Query(alias="passesUpdatedSince")] = None,
) -> Response:
    """The serial numbers of the device's passes changed since a tag (204: none)."""
    bad = _bad(request, device=device, passType=pass_type)
    if bad is None and since is not None:
        bad = _bad(request, passesUpdatedSince=since)
    if bad is not None:
        return bad
    if not _own_type(request, pass_type):
        return Response(None, 204)
    found = await service.serials_since(
        runtime_of(request), device_id=device, pass_type_id=pass_type, tag=since
    )
    if found is None:
        return Response(None, 204)
    return JSONResponse(found, 200)


@apple_router.api_route("/passes/{passType}/{serial}", methods=["GET", "HEAD"])
async def latest(
    request: Request,
    pass_type: _TYPE,
    serial: _SERIAL,
    auth: _AUTH = None,
    since: Annotated[str | None, Header(alias="If-Modified-Since")] = None,
) -> Response:
    """The pass as it is now; 304 when unchanged since ``If-Modified-Since``."""
    bad = _bad(request, passType=pass_type, serial=serial)
    if bad is not None:
        return bad
    if not _own_type(request, pass_type):
        return _refuse(request, 401, Code.UNAUTHORIZED)
    found = await service.latest_pass(runtime_of(request), serial=serial, authorization=auth)
    if found == 401:
        return _refuse(request, 401, Code.UNAUTHORIZED)
    if isinstance(found, int):
        return _refuse(request, 404, Code.NO_SUCH_ENDPOINT)
    if since is not None and _not_modified(found, since):
        return Response(None, 304)
    return _pass_response(found, head=request.method == "HEAD")


def _not_modified(found: service.PassFile, header: str) -> bool:
    try:
        asked = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False
    if asked.tzinfo is None:
        return False
    return found.updated_at.replace(microsecond=0) <= asked.astimezone(UTC).replace(tzinfo=None)


@apple_router.post("/log")
async def device_log(request: Request) -> Response:
    """Wallet's reports of problems with our passes, written to our log."""
    body = await _json(request)
    logs = body.get("logs") if body is not None else None
    if not isinstance(logs, list):
        return _refuse(request, 400, Code.INVALID_PARAMETER, "logs")
    service.device_log([str(line) for line in logs])
    return Response(None, 200)
