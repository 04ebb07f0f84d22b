"""The response envelope ``{code, message, result}`` and its fast JSON response."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import Response

from stampbook.kit import metrics
from stampbook.kit.errors import Code, StampbookError

OK_NULL_BODY = b'{"code":0,"message":"","result":null}'


class JSONResponse(StarletteJSONResponse):
    """JSON rendered with orjson: keeps dict order, which the wire contract fixes.

    A JSONResponse subclass so that FastAPI documents the routes' envelopes as
    JSON; for any other response class it adds ``"type": "string"`` beside the
    declared model, a schema no envelope can satisfy.
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialise ``content`` (already ordered) to bytes."""
        return orjson.dumps(content)


def envelope(code: Code, message: str, result: Any) -> dict[str, Any]:
    """The envelope as a dict, fields in the contract's order."""
    return {"code": int(code), "message": message, "result": result}


def ok(result: Any = None) -> Response:
    """A success: code 0, empty message."""
    if result is None:
        return Response(OK_NULL_BODY, media_type="application/json")
    return JSONResponse(envelope(Code.OK, "", result))


def error_body(error: StampbookError, lang: str) -> bytes:
    """The serialised envelope for a refusal, in ``lang`` (counted, by code)."""
    metrics.count_refusal(error.code)
    return orjson.dumps(envelope(error.code, error.message(lang), None))


def error_response(error: StampbookError, lang: str) -> Response:
    """A refusal with the code's HTTP status and headers (e.g. Retry-After)."""
    return Response(
        error_body(error, lang),
        status_code=error.http_status,
        media_type="application/json",
        headers=error.headers or None,
    )


def code_response(code: Code, lang: str, *, param: str | None = None) -> Response:
    """A refusal by code alone (used by the framework-level handlers)."""
    return error_response(StampbookError(code, param=param), lang)


__all__ = [
    "OK_NULL_BODY",
    "JSONResponse",
    "code_response",
    "envelope",
    "error_body",
    "error_response",
    "ok",
]
