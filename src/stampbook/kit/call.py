"""The request side of every API route: who calls (as the intake admitted
them), in what language, and how its reads and writes run.

Routes stay thin: they parse, then hand a service function to ``Call.read``
or ``Call.write``. ``write`` runs the function in one transaction together
with the Idempotency-Key bookkeeping, and answers business refusals (HTTP 200
codes) as committed envelopes, while any other error rolls everything back.

Checking the key itself is ``stampbook.auth``'s (it needs the accounts room,
which the kit must not import): the intake middleware runs it before the
body is read and leaves the ``Principal`` here through ``admitted``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response
from starlette.types import Scope

from stampbook.kit import idempotency, metrics
from stampbook.kit.context import CallContext, zone_for
from stampbook.kit.db import Database
from stampbook.kit.envelope import error_body, ok
from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.i18n import negotiate
from stampbook.kit.runtime import Runtime
from stampbook.kit.schemas import storable_text

T = TypeVar("T")
ServiceCall = Callable[[AsyncConnection, CallContext], Awaitable[Any]]
# A write the service may do whole in one step (stamps.service.add_at_once):
# given the database, the context and the request's fingerprint (None without
# a key), None when it wrote, else the service call that answers through
# ``write``'s general path (key claim, replay, refusal).
HotWrite = Callable[[Database, CallContext, str | None], Awaitable[ServiceCall | None]]
HotRead = Callable[[CallContext], Awaitable[Any]]

RATE_LIMIT_HEADERS_STATE = "ratelimit_headers"
PRINCIPAL_STATE = "stampbook_principal"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the account and the key, as ``stampbook.auth`` resolved them."""

    account_idx: int
    key_idx: int | None
    timezone: str | None
    rate_limit: str | None


def admitted(scope: Scope, principal: Principal, rate_limit_headers: dict[str, str]) -> None:
    """Leave an admitted request's principal and RateLimit headers in its scope's
    state, where ``authenticate`` and the intake (which sends the headers) find them."""
    state = scope.setdefault("state", {})
    state[PRINCIPAL_STATE] = principal
    if rate_limit_headers:
        state[RATE_LIMIT_HEADERS_STATE] = rate_limit_headers


def runtime_of(request: Request) -> Runtime:
    """The app's runtime."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def language_of(request: Request) -> str:
    """``en`` or ``ko`` for this request."""
    return negotiate(request.headers.get("accept-language"))


@dataclass(slots=True)
class Call:
    """One authenticated API request."""

    request: Request
    runtime: Runtime
    principal: Principal
    lang: str

    def context(self, *, idempotency_key: str | None = None) -> CallContext:
        """The service-call context for this request, stamped with the current time."""
        settings = self.runtime.settings
        return CallContext(
            account_idx=self.principal.account_idx,
            zone=zone_for(self.principal.timezone or settings.timezone),
            now=self.runtime.clock.now(),
            public_url=settings.public_url,
            key_idx=self.principal.key_idx,
            idempotency_key=idempotency_key,
            lockout_failures=settings.lockout_failures,
            lockout_minutes=settings.lockout_minutes,
            wallet=settings.wallet,
        )

    async def read(self, service: ServiceCall) -> Response:
        """Run a read-only service call and wrap its result in the envelope."""
        async with self.runtime.db.read() as conn:
            result = await service(conn, self.context())
        return ok(result)

    async def read_hot(self, hot: HotRead, service: ServiceCall) -> Response:
        """``read`` through a driver-level function where the database has that
        path (see ``Database.has_driver_path``), else through ``service``."""
        if not self.runtime.db.has_driver_path:
            return await self.read(service)
        return ok(await hot(self.context()))

    async def write_hot(self, service: HotWrite, *, params: object) -> Response:
        """``write`` for a service that may do its common case, an accepted
        change with a null result, in one step: the service chooses; when it
        returns a service call instead, ``write`` answers with it (a refusal,
        a replay, a reused key), as if no step had been tried.
        """
        key, fingerprint = self._idempotency(params)
        general = await service(self.runtime.db, self.context(idempotency_key=key), fingerprint)
        if general is None:
            return ok()
        return await self._write(general, key, fingerprint)

    async def write(self, service: ServiceCall, *, params: object) -> Response:
        """Run a write in one transaction, exactly once per Idempotency-Key.

        ``params`` are the request's parsed parameters: with the method and
        path they make the fingerprint a retried key must match.
        """
        return await self._write(service, *self._idempotency(params))

    def _idempotency(self, params: object) -> tuple[str | None, str | None]:
        """The request's Idempotency-Key (1303 when malformed) and its fingerprint."""
        key = idempotency.validate_key(self.request.headers.get(idempotency.HEADER))
        if key is None:
            return None, None
        request = self.request
        return key, idempotency.fingerprint(request.method, request.scope["path"], params)

    async def _write(
        self, service: ServiceCall, key: str | None, fingerprint: str | None
    ) -> Response:
        context = self.context(idempotency_key=key)
        account_idx = context.account_idx
        db = self.runtime.db
        async with db.write() as conn:
            if key is not None:
                assert fingerprint is not None
                claimed = await idempotency.claim(
                    conn,
                    account_idx=account_idx,
                    key=key,
                    fingerprint=fingerprint,
                    now=context.now_naive,
                )
                if not claimed:
                    replay = await idempotency.stored(
                        conn, account_idx=account_idx, key=key, fingerprint=fingerprint
                    )
                    metrics.IDEMPOTENT_REPLAYS.inc()
                    return Response(
                        replay.body,
                        status_code=replay.status_code,
                        media_type="application/json",
                        headers={idempotency.REPLAYED_HEADER: "true"},
                    )
            try:
                result = await service(conn, context)
                response = ok(result)
            except StampbookError as refusal:
                if refusal.http_status != 200:
                    raise
                response = Response(error_body(refusal, self.lang), media_type="application/json")
            if key is not None:
                await idempotency.record(
                    conn,
                    account_idx=account_idx,
                    key=key,
                    response=idempotency.StoredResponse(response.status_code, bytes(response.body)),
                )
        return response


async def authenticate(request: Request) -> Call:
    """FastAPI dependency: the Call for a request the intake admitted.

    The intake middleware checks every API request's key before its body is
    read and leaves the principal in the scope's state, so the key is looked
    up once. A request that reached a route without it (a route outside the
    intake's prefix, an app without the middleware) is refused 1101: the
    check fails closed.
    """
    principal: Principal | None = request.scope.get("state", {}).get(PRINCIPAL_STATE)
    if principal is None:
        raise StampbookError(Code.UNAUTHORIZED)
    for name, value in request.query_params.multi_items():
        if not storable_text(value):
            # A %00 would reach PostgreSQL and fail there (a 500).
            raise StampbookError(Code.INVALID_PARAMETER, param=name, expected=("storable", {}))
    if request.method != "GET":
        # A malformed key is refused (1303) before a route does anything on
        # its own, such as resolving a webhook URL and refusing that instead.
        idempotency.validate_key(request.headers.get(idempotency.HEADER))
    return Call(
        request=request, runtime=runtime_of(request), principal=principal, lang=language_of(request)
    )
