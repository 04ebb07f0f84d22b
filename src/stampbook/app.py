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
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response
from starlette.routing import Match, Route
from starlette.types import Scope
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from stampbook import __version__, jobs
from stampbook.auth import admit, watching
from stampbook.cards.routes import router as cards_router
from stampbook.codes.page_routes import router as codes_page_router
from stampbook.codes.routes import router as codes_router
from stampbook.config import Settings, proxy_entries
from stampbook.dashboard import routes as dashboard
from stampbook.kit import expectations, logs, metrics
from stampbook.kit.access import AccessLog, Observed, Observer, observe
from stampbook.kit.call import language_of
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
from stampbook.wallet import routes as wallet_routes
from stampbook.webhooks import service as webhook_service
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
            metrics.worker_exiting()

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
    # The last added runs first: the observers, proxies' headers, the intake
    # (the key, the body's size, the RateLimit headers), then the routes.
    app.add_middleware(
        Intake,
        admit=admit,
        api_prefix=API_PREFIX,
        max_body_bytes=settings.max_body_bytes,
        max_form_bytes=settings.max_form_bytes,
        page_refusal=lambda scope: plain_page(Request(scope), 413, "error_title", "error_text"),
    )
    trusted_proxies = proxy_entries(settings.trusted_proxies)
    if trusted_proxies:
        # uvicorn's own implementation; `stampbook serve` turns uvicorn's off, whose
        # default would trust 127.0.0.1 without being asked.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted_proxies)
    # Outermost: times the whole request, those refused before routing too,
    # for every per-request observer (``kit.access.observe``): the metrics'
    # counts and, under ``serve``, the access log. One wrapper for all.
    observers: list[Observer] = [metrics.observe_request]
    app.state.request_observers = observers
    app.add_middleware(Observed, observers=observers)
    if access_log:
        observe(app.state, AccessLog(json=logs.uses_json(settings.log_format)))
    _install_error_handlers(app)
    app.include_router(stamps_router)
    app.include_router(cards_router)
    app.include_router(stats_router)
    app.include_router(webhooks_router)
    # A wallet's paths exist only when it is configured (docs/wallet.md);
    # before the page's, whose last route answers every other /s/ path 404.
    if settings.apple_wallet:
        app.include_router(wallet_routes.page_apple_router)
        app.include_router(wallet_routes.apple_router)
    if settings.google_wallet:
        app.include_router(wallet_routes.page_google_router)
        app.include_router(wallet_routes.google_router)
    app.include_router(codes_router)
    app.include_router(codes_page_router)
    app.include_router(page_router)
    app.mount("/static", static_files(), name="static")
    # The dashboard's static files before its pages: its catch-all 404 would match them.
    app.mount("/dashboard/static", dashboard.static_files(), name="dashboard-static")
    for router in dashboard.routers():
        app.include_router(router)
    _install_health(app)
    _install_front_door(app)
    _install_metrics(app)
    install_docs(app, api_prefix=API_PREFIX)
    _install_trailing_slash_refusal(app)
    return app


def _install_trailing_slash_refusal(app: FastAPI) -> None:
    """``/api/…/add/`` is 1003, the envelope, not Starlette's 307 to ``…/add``
    with an empty body. Only paths ending in a slash match, and no API route
    does, so every real route (and its 405 for a wrong verb) is untouched; the
    pages keep the router's redirects."""

    async def no_such_endpoint(request: Request) -> Response:
        raise StarletteHTTPException(404)

    app.router.routes.append(
        _SlashedPath(
            API_PREFIX + "{rest:path}/",
            no_such_endpoint,
            methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            include_in_schema=False,
        )
    )


class _SlashedPath(Route):
    """A route for paths the client sent with a trailing slash. The router,
    finding no route for ``/api/x``, probes ``/api/x/`` to offer a redirect:
    that probe changes ``path`` but not ``raw_path``, so it never matches here."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """Starlette's match, for requests whose own path ends in a slash."""
        raw = scope.get("raw_path")
        if isinstance(raw, bytes) and not raw.endswith(b"/"):
            return Match.NONE, {}
        return super().matches(scope)


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


DASHBOARD_PATH = "/dashboard/"


def _install_front_door(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def front_door(request: Request) -> Response:
        """A browser is led to the dashboard (which signs it in); an API client
        gets the envelope (1003) as before."""
        if "text/html" not in request.headers.get("accept", ""):
            raise StarletteHTTPException(404)
        return RedirectResponse(DASHBOARD_PATH, status_code=303)


def _install_metrics(app: FastAPI) -> None:
    @app.get("/metrics", include_in_schema=False)
    async def metrics_text(request: Request) -> Response:
        """Prometheus text format: to loopback clients, or with the metrics token."""
        runtime: Runtime = request.app.state.runtime
        token = runtime.settings.metrics_token
        if not metrics.may_scrape(request.scope, request.headers.get("authorization"), token):
            headers = {"WWW-Authenticate": "Bearer"} if token else None
            raise StampbookError(Code.FORBIDDEN, headers=headers)
        metrics.sample_pools(runtime.db.pool_use())
        scraped = []
        try:
            async with runtime.db.read() as conn:
                depth = await webhook_service.queue_depth(conn)
            scraped.append(
                metrics.gauge(
                    "stampbook_webhook_queue_depth",
                    "Webhook messages waiting to be delivered (pending), server-wide.",
                    depth,
                )
            )
        except StampbookError:
            pass  # the database is down: the rest still answers (and says so in refusals)
        return Response(metrics.exposition(scraped), media_type=metrics.CONTENT_TYPE)


def _validation_refusal(request: Request, errors: list[Any]) -> StampbookError:
    """Pydantic's first complaint as the envelope's error: 1002 when the body is
    not a JSON object, else 1001 naming the field and, when the document
    knows, what it expects (an unknown field is said to be unknown)."""
    # An unknown field answers first: it is most often the misspelling of the
    # field that is then missing ("stampz" for "stamps").
    unknown = [error for error in errors if error.get("type") == "extra_forbidden"]
    first = (unknown or errors or [{}])[0]
    loc = tuple(first.get("loc", ()))
    kind = first.get("type", "")
    if kind == "json_invalid" or (loc == ("body",)):
        return StampbookError(Code.MALFORMED_BODY)
    names = [part for part in loc[1:] if isinstance(part, str)]
    param = names[0] if names else (str(loc[-1]) if loc else None)
    if kind == "extra_forbidden":
        return StampbookError(Code.INVALID_PARAMETER, param=param, expected=expectations.UNKNOWN)
    route = request.scope.get("route")
    schema = None
    if param is not None and loc and isinstance(route, APIRoute):
        schema = expectations.field_schema(
            request.app.openapi(),
            path=route.path_format,
            method=request.method,
            location=str(loc[0]),
            name=param,
        )
    expected = expectations.expectation(schema) if schema is not None else None
    return StampbookError(Code.INVALID_PARAMETER, param=param, expected=expected)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StampbookError)
    async def on_stampbook_error(request: Request, exc: StampbookError) -> Response:
        return error_response(exc, language_of(request))

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> Response:
        refusal = _validation_refusal(request, list(exc.errors()))
        return error_response(refusal, language_of(request))

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


def serve_app() -> FastAPI:
    """The factory ``stampbook serve`` hands to uvicorn: settings from the
    environment, logging configured in each worker, background jobs on, the
    startup heap frozen; the access log on unless turned off or below the
    log's level."""
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    # Access lines are info lines: a log at warning or above drops them, as it
    # dropped uvicorn's, and then pays nothing for them per request.
    access_log = settings.access_log and logs.writes_info(settings.log_level)
    return create_app(settings, background=True, freeze_after_startup=True, access_log=access_log)
