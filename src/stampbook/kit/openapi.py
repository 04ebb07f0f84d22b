"""Models that document the envelope in OpenAPI (responses are built by hand,
for speed and field order; these describe them to clients and schemathesis)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

ResultT = TypeVar("ResultT")


class Envelope(BaseModel, Generic[ResultT]):
    """``{code, message, result}``: code 0 is success; on refusal result is null."""

    code: int = Field(description="0 on success; see docs/errors.md")
    message: str = Field(description='"" on success, else a human message')
    result: ResultT | None = None


class ErrorEnvelope(BaseModel):
    """A refusal: a non-zero code, its message, and a null result."""

    code: int
    message: str
    result: None = None


_ERROR_STATUSES = {
    400: "Malformed input: 1001 (names the parameter), 1002, 1303",
    401: "1101: the API key is missing, malformed, unknown or revoked",
    404: "1003: no such endpoint",
    405: "1004: wrong method for the path",
    409: "1302: the first request with this Idempotency-Key is still running",
    422: "1301: Idempotency-Key reused with a different request",
    429: "1201: rate limited; see Retry-After",
    500: "1901: internal error; nothing was changed",
    503: "1902: database unavailable",
}


def responses_for(result: Any) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route whose success result is ``result``."""
    documented: dict[int | str, dict[str, Any]] = {
        200: {
            "model": Envelope[result],
            "description": "Success (code 0) or a business refusal (non-zero code, null result)",
        }
    }
    for status, description in _ERROR_STATUSES.items():
        documented[status] = {"model": ErrorEnvelope, "description": description}
    return documented
