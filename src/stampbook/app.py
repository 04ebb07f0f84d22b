"""The application factory: routers, error handlers, middleware, lifespan."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from stampbook import __version__, jobs
from stampbook.auth import admit, watching
from stampbook.cards.routes import router as cards_router
from stampbook.codes.page_routes import router as codes_page_router
from stampbook.codes.routes import router as codes_router
from stampbook.config import Settings, proxy_entries
from stampbook.dashboard import routes as dashboard
from stampbook.kit import logs
from stampbook.kit.access import AccessLog, Observed, Observer, observe
from stampbook.kit.call import RATE_LIMIT_HEADERS_STATE, language_of
from stampbook.kit.clock import Clock
from stampbook.kit.envelope import JSONResponse, code_response, error_response
from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.intake import Intake
from stampbook.kit.openapi import install_docs
from stampbook.kit.runtime import Runtime
from stampbook.page.routes import plain_page, static_files
from stampbook.page.routes import router as page_router
from stampbook.stamps.routes import router as stamps_router
from stampbook.stats.routes import router as stats_router
from stampbook.webhooks.routes import router as webhooks_router

log = logging.getLogger("stampbook")

API_PREFIX = "/api/"


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    background: bool = False,
    freeze_after_startup: bool = False,
    access_log: bool = False,
) -> FastAPI:
    """Build an app for ``settings`` (read from the environment when omitted).

    ``background`` starts the periodic jobs of ``stampbook.jobs`` (housekeeping,
    and the webhook dispatcher when enabled); tests usually leave it off and
    drive those jobs directly. ``freeze_after_startup`` is for the server
    process only (``serve_app``): see ``_freeze_startup_objects``.
    ``access_log`` writes one line per request (``kit/access.py``); ``serve``
    turns it on unless ``STAMPBOOK_ACCESS_LOG`` is false.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings, clock=clock)
        app.state.runtime = runtime
        try:
            async with (
                watching(runtime),
                jobs.running(runtime) if background else contextlib.nullcontext(),
            ):
                if freeze_after_startup:
                    _freeze_startup_objects()
                yield
        finally:
            await runtime.close()

    app = FastAPI(
        title="Stampbook",
        version=__version__,
        description=(
            "Self-hosted, wire-compatible Stamp API v1. Every response is the envelope "
            "`{code, message, result}`; see docs/errors.md for the codes."
        ),
        lifespan=lifespan,
        default_response_class=JSONResponse,
        # Served by install_docs after the API routes instead: routes are tried
        # in order, and the add and validate need not be matched against the
        # four documentation paths first.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    # The last added runs first: the observers, proxies' headers, then the RateLimit headers
    # around the intake (so its refusals carry them too), then the routes.
    app.add_middleware(
        Intake,
        admit=admit,
        api_prefix=API_PREFIX,
        max_body_bytes=settings.max_body_bytes,
        max_form_bytes=settings.max_form_bytes,
        page_refusal=lambda scope: plain_page(Request(scope), 413, "error_title", "error_text"),
    )
    app.add_middleware(RateLimitHeaders)
    trusted_proxies = proxy_entries(settings.trusted_proxies)
    if trusted_proxies:
        # uvicorn's own implementation; `stampbook serve` turns uvicorn's off, whose
        # default would trust 127.0.0.1 without being asked.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted_proxies)
    # Outermost: times the whole request for the access log and any other
    # per-request observer (``kit.access.observe``), one wrapper for all.
    observers: list[Observer] = []
    app.state.request_observers = observers
    app.add_middleware(Observed, observers=observers)
    if access_log:
        observe(app.state, AccessLog(json=logs.uses_json(settings.log_format)))
    _install_error_handlers(app)
    app.include_router(stamps_router)
    app.include_router(cards_router)
    app.include_router(stats_router)
    app.include_router(webhooks_router)
    app.include_router(codes_router)
    app.include_router(codes_page_router)
    app.include_router(page_router)
    app.mount("/static", static_files(), name="static")
    # The dashboard's static files before its pages: its catch-all 404 would match them.
    app.mount("/dashboard/static", dashboard.static_files(), name="dashboard-static")
    for router in dashboard.routers():
        app.include_router(router)
    _install_health(app)
    install_docs(app, api_prefix=API_PREFIX)
    return app


def _freeze_startup_objects() -> None:
    """Everything built at startup (routes, models, tables, settings) lives as
    long as the server process: moved out of the collector's reach, a full
    collection no longer walks it. Under load those walks were tens of
    milliseconds, the p99 of an add (bench/README.md). Only the server does
    this: a frozen heap in a test run or an embedding process is never freed."""
    gc.collect()
    gc.freeze()


def _install_health(app: FastAPI) -> None:
    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        responses={503: {"description": "database unavailable, not migrated or full"}},
    )
    async def readyz(request: Request) -> Response:
        """Readiness: the database answers, migrated, with room; Redis's state
        (``degraded`` is still 200: see kit/readiness.py)."""
        runtime: Runtime = request.app.state.runtime
        status, body = await runtime.probe.report(
            runtime.db, runtime.limiter, within=runtime.settings.readiness_timeout_seconds
        )
        return JSONResponse(body, status)


def _validation_code(errors: list[Any]) -> tuple[Code, str | None]:
    """Map pydantic's first complaint to 1002 (body not an object) or 1001 naming the field."""
    first = errors[0] if errors else {}
    loc = tuple(first.get("loc", ()))
    kind = first.get("type", "")
    if kind == "json_invalid" or (loc == ("body",)):
        return Code.MALFORMED_BODY, None
    names = [part for part in loc[1:] if isinstance(part, str)]
    return Code.INVALID_PARAMETER, names[0] if names else (str(loc[-1]) if loc else None)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StampbookError)
    async def on_stampbook_error(request: Request, exc: StampbookError) -> Response:
        return error_response(exc, language_of(request))

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> Response:
        code, param = _validation_code(list(exc.errors()))
        return code_response(code, language_of(request), param=param)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: Code.NO_SUCH_ENDPOINT, 405: Code.METHOD_NOT_ALLOWED}.get(exc.status_code)
        if code is None:
            code = Code.MALFORMED_BODY if exc.status_code == 400 else Code.INTERNAL_ERROR
        response = code_response(code, language_of(request))
        if exc.status_code == 405 and exc.headers and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return code_response(Code.INTERNAL_ERROR, language_of(request))


class RateLimitHeaders:
    """Adds the RateLimit headers computed during auth to whatever response goes out
    (success, refusal or error), as the IETF draft asks for every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state") or {}
                headers = state.get(RATE_LIMIT_HEADERS_STATE)
                if headers:
                    raw = list(message.get("headers", []))
                    present = {name.lower() for name, _ in raw}
                    for name, value in headers.items():
                        if name.lower().encode() not in present:
                            raw.append((name.lower().encode(), value.encode()))
                    message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def serve_app() -> FastAPI:
    """The factory ``stampbook serve`` hands to uvicorn: settings from the
    environment, logging configured in each worker, background jobs on, the
    startup heap frozen."""
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    return create_app(
        settings, background=True, freeze_after_startup=True, access_log=settings.access_log
    )
