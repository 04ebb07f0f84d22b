"""When the request being served arrived: the start of every budget it waits on.

A request's waits (SQLite's write lock, the worker's queue of writers) are
bounded from its arrival, not from whenever it first asks, so that time spent
before (the key check, a first write) counts too and a client never waits
longer than the budget. The intake middleware records the arrival for every
HTTP request; outside a request (the CLI, tests calling a service) a wait
starts when it is asked for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_ARRIVED: ContextVar[float | None] = ContextVar("stampbook_arrived", default=None)


@contextmanager
def arrived(at: float | None = None) -> Iterator[None]:
    """Within the block, the request being served arrived ``at`` (the running
    loop's clock; now when omitted)."""
    token = _ARRIVED.set(asyncio.get_running_loop().time() if at is None else at)
    try:
        yield
    finally:
        _ARRIVED.reset(token)


def deadline_after(budget: float) -> float:
    """The loop-clock deadline of a ``budget``-second wait for the current
    request: counted from its arrival, or from now outside a request."""
    started = _ARRIVED.get()
    return (asyncio.get_running_loop().time() if started is None else started) + budget
