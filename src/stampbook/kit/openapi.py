"""Models that document the envelope in OpenAPI (responses are built by hand,
for speed and field order; these describe them to clients and schemathesis)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Generic, TypeVar

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.staticfiles import StaticFiles

from stampbook.kit.params import MAX_ID

ResultT = TypeVar("ResultT")
DOCS_ASSETS = Path(__file__).parent / "docs_assets"
# The reference pages may load nothing from another host. Both UIs start from
# an inline script and draw icons from data: URIs; ReDoc's search runs in a
# worker made from a blob.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'"
)
_HIDE_REDOC_LOGO = 'img[src^="https://cdn.redoc.ly/"] { display: none; }\n'


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


WRITE_METHODS = ("post", "put", "patch", "delete")
_TEXT = {"type": "string"}
_IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes the write exactly-once for 24 hours: a retry with the same key and the same "
        "request replays the first response (Idempotent-Replayed: true) and changes nothing. "
        "Another request with the key is 422 (1301). See docs/idempotency.md."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
_RATE_LIMIT_HEADERS = {
    "RateLimit-Policy": {
        "description": 'The key\'s quota and window, e.g. "default";q=6000;w=60 '
        "(IETF RateLimit header fields draft); absent when limits are off.",
        "schema": _TEXT,
    },
    "RateLimit": {
        "description": "Requests left and seconds until the window resets, "
        'e.g. "default";r=5999;t=60.',
        "schema": _TEXT,
    },
}
_REPLAYED_HEADER = {
    "Idempotent-Replayed": {
        "description": '"true" when this is the stored response of an earlier request '
        "with the same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
_RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds until the rate-limit window resets.",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def document_conventions(document: dict[str, Any], *, api_prefix: str) -> dict[str, Any]:
    """Add what every API operation shares to a generated OpenAPI document, in place.

    The API key scheme; on every write verb the optional ``Idempotency-Key``
    header (read by ``Call.write``, not a route parameter) and the
    ``Idempotent-Replayed`` response header; the RateLimit headers on every
    response and ``Retry-After`` on 429.
    """
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})["APIKey"] = {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "`Authorization: APIKey <key>`",
    }
    for path, item in document.get("paths", {}).items():
        if not path.startswith(api_prefix):
            continue
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            operation["security"] = [{"APIKey": []}]
            write = method in WRITE_METHODS
            if write:
                parameters = operation.setdefault("parameters", [])
                if not any(p.get("name") == "Idempotency-Key" for p in parameters):
                    parameters.append(dict(_IDEMPOTENCY_KEY_PARAMETER))
            for status, response in operation.get("responses", {}).items():
                headers = response.setdefault("headers", {})
                if status != "401":
                    headers.update(_RATE_LIMIT_HEADERS)
                if status == "429":
                    headers.update(_RETRY_AFTER_HEADER)
                if write and status in ("200", "400", "404", "500", "503"):
                    # Any stored response can come back as a replay.
                    headers.update(_REPLAYED_HEADER)
    _exact_integer_bounds(document)
    return document


def _exact_integer_bounds(node: Any) -> None:
    """Integer bounds as JSON Schema's integers, in place.

    FastAPI's OpenAPI model holds ``minimum``/``maximum`` as floats, so 2^63 - 1
    (``MAX_ID``) came out as 9.223372036854776e18, i.e. 2^63, one more than
    the server accepts; and a query integer read through a BeforeValidator
    (``kit.params.QueryIdx``) came out with pydantic's ``ge``/``le``, which
    JSON Schema does not know, beside an ``anyOf`` when it is optional.
    """
    if isinstance(node, list):
        for item in node:
            _exact_integer_bounds(item)
        return
    if not isinstance(node, dict):
        return
    targets = [node] if node.get("type") == "integer" else []
    for branch in node.get("anyOf", []):
        if isinstance(branch, dict) and branch.get("type") == "integer":
            targets.append(branch)
    for keyword, bound in (("ge", "minimum"), ("le", "maximum")):
        if keyword in node and targets:
            value = node.pop(keyword)
            for target in targets:
                target[bound] = value
    for target in targets:
        for bound in ("minimum", "maximum"):
            value = target.get(bound)
            if isinstance(value, float) and value.is_integer():
                target[bound] = MAX_ID if value >= MAX_ID else int(value)
    for child in node.values():
        _exact_integer_bounds(child)


def install_docs(
    app: FastAPI,
    *,
    api_prefix: str,
    openapi_url: str = "/openapi.json",
    docs_url: str = "/docs",
    redoc_url: str = "/redoc",
    assets_url: str = "/docs/assets",
) -> None:
    """Serve the OpenAPI document, Swagger UI and ReDoc the way FastAPI's own
    defaults do, for an app built with ``openapi_url=None``, with their
    scripts and styles from the vendored ``docs_assets`` under ``assets_url``.

    Called after the API routers are included, so these routes come last in
    the table that is tried in order. The document is generated once, with
    :func:`document_conventions` applied (FastAPI's documented way of
    extending it: replace ``app.openapi``).
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_conventions(generate(), api_prefix=api_prefix)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    def root_path(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    async def openapi_document(request: Request) -> JSONResponse:
        prefix = root_path(request)
        document = app.openapi()
        if prefix and app.root_path_in_servers:
            servers = document.get("servers", [])
            if prefix not in {server.get("url") for server in servers}:
                document = {**document, "servers": [{"url": prefix}, *servers]}
        return JSONResponse(document)

    redirect_url = app.swagger_ui_oauth2_redirect_url

    async def swagger_ui(request: Request) -> HTMLResponse:
        prefix = root_path(request)
        assets = prefix + assets_url
        page = get_swagger_ui_html(
            openapi_url=prefix + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon-32x32.png",
            oauth2_redirect_url=prefix + redirect_url if redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        page.headers["Content-Security-Policy"] = DOCS_POLICY
        return page

    async def swagger_ui_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        assets = root_path(request) + assets_url
        page = get_redoc_html(
            openapi_url=root_path(request) + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{assets}/favicon-32x32.png",
            with_google_fonts=False,
        )
        # ReDoc's sidebar credit shows a logo from its CDN: the CSP keeps the
        # browser from asking for it, and this rule from drawing a broken image.
        html = bytes(page.body).decode().replace("</style>", _HIDE_REDOC_LOGO + "</style>", 1)
        return HTMLResponse(html, headers={"Content-Security-Policy": DOCS_POLICY})

    app.add_route(openapi_url, openapi_document, include_in_schema=False)
    app.add_route(docs_url, swagger_ui, include_in_schema=False)
    if redirect_url:
        app.add_route(redirect_url, swagger_ui_redirect, include_in_schema=False)
    app.add_route(redoc_url, redoc, include_in_schema=False)
    # Swagger UI and ReDoc from the package itself (kit/docs_assets/README.md):
    # the reference works on a network that cannot reach a CDN.
    app.mount(assets_url, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
