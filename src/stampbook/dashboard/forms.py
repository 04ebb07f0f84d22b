"""Dashboard forms into service calls: the API's own request models built from
form fields, and one runner for every write.

``perform`` is how every dashboard write happens: one transaction, the
form's once-token claimed in it (the API's ``Idempotency-Key`` table, key
``dashboard:<token>``), then the room's service function with a DASHBOARD
context naming the user. A second submission of the same form (a
double-click, a reload) finds its token taken and writes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import FormData

from stampbook.dashboard.web import Desk
from stampbook.kit import idempotency
from stampbook.kit.context import CallContext
from stampbook.kit.errors import Code, StampbookError
from stampbook.page.web import number_field, text_field

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
ONCE_FIELD = "once"


def model_from(model: type[M], values: dict[str, Any]) -> M:
    """The API's request model from form values; 1001 naming the first bad field."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        errors = exc.errors()
        location = errors[0]["loc"] if errors else ()
        names = [part for part in location if isinstance(part, str)]
        raise StampbookError(Code.INVALID_PARAMETER, param=names[0] if names else None) from exc


def optional_text(form: FormData, name: str) -> str | None:
    """A text field, None when left empty."""
    return text_field(form, name) or None


def whole_number(form: FormData, name: str) -> int | None:
    """A whole-number field by the API's strict rule (1001 naming it), None when empty."""
    return number_field(form, name)


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What a form did: its value, or the refusal to show (nothing was written);
    ``repeated`` when it was a second submission of a form already done."""

    value: T | None = None
    refusal: StampbookError | None = None
    repeated: bool = False

    @property
    def done(self) -> bool:
        """True unless refused."""
        return self.refusal is None


async def perform(
    desk: Desk,
    form: FormData,
    work: Callable[[AsyncConnection, CallContext], Awaitable[T]],
) -> Outcome[T]:
    """Run ``work`` once for this form, in one transaction, as the signed-in
    user; a business refusal (or a bad field) rolls it back and is returned."""
    once = text_field(form, ONCE_FIELD)[:100] or None
    ctx = desk.context(once=once)
    try:
        async with desk.runtime.db.write() as conn:
            if ctx.idempotency_key is not None:
                claimed = await idempotency.claim(
                    conn,
                    account_idx=ctx.account_idx,
                    key=ctx.idempotency_key,
                    fingerprint=idempotency.fingerprint("POST", desk.request.url.path, {}),
                    now=ctx.now_naive,
                )
                if not claimed:
                    return Outcome(repeated=True)
            value = await work(conn, ctx)
    except StampbookError as exc:
        if exc.http_status != 200 and exc.code != Code.INVALID_PARAMETER:
            raise
        return Outcome(refusal=exc)
    return Outcome(value=value)


async def read(desk: Desk, work: Callable[[AsyncConnection, CallContext], Awaitable[T]]) -> T:
    """Run ``work`` in a read transaction with the signed-in user's context."""
    async with desk.runtime.db.read() as conn:
        return await work(conn, desk.context())
