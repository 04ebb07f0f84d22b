"""Prometheus metrics: what is counted, the request middleware, and ``/metrics``.

The counts are the server's, not one worker's. ``stampbook serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a private directory before its workers start
(``cli/serve.py``); prometheus_client then keeps every worker's values in a
memory-mapped file there, and a scrape answered by any worker sums them all.
Without that directory (tests, an embedding app, a single process whose
prometheus_client was imported first) the values live in this process and
the scrape reads them from ``REGISTRY``: prometheus_client decides which at
import time, and ``MULTIPROCESS`` reads its decision.

Counting sits where the fact is known, once: a stamp added or removed where
the service knows the change happened (``stamps.service``), a refusal where
its envelope is written (``kit.envelope.error_body``), a replay where it is
replayed (``kit.call``), a delivery where the dispatcher settles it. The
request observer (``observe_request``, called by ``kit.access.Observed``,
the one outermost middleware) reads the route template the router left in
the scope, so a page token in ``/s/<token>`` never becomes a
label. On the request path everything is counted in plain integers (a
request costs two clock reads, a dict lookup, a bisect and three additions);
``flush`` publishes them to prometheus_client, whose every increment takes a
lock and, across processes, writes a file.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import tempfile
from bisect import bisect_left
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from starlette.types import Scope

from stampbook.kit.remote import client_address

MULTIPROCESS = values.ValueClass is not values.MutexValue
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
UNMATCHED = "unmatched"  # the label of a request no route answered (a 404)

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "stampbook_requests",
    "HTTP requests answered, by route template and status.",
    ["route", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "stampbook_request_duration_seconds",
    "Time from the request reaching the app to its last byte sent, by route template.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
STAMPS_ADDED = Counter("stampbook_stamps_added", "Stamps added (accepted adds).", registry=REGISTRY)
STAMPS_REMOVED = Counter(
    "stampbook_stamps_removed", "Stamps taken back (accepted removes).", registry=REGISTRY
)
REWARDS_REDEEMED = Counter(
    "stampbook_rewards_redeemed",
    "Rewards marked used (redeem, or update useYn=Y).",
    registry=REGISTRY,
)
REFUSALS = Counter(
    "stampbook_refusals",
    "Envelopes answered with a non-zero code (business refusals and input, key, "
    "limit and server errors), by code.",
    ["code"],
    registry=REGISTRY,
)
IDEMPOTENT_REPLAYS = Counter(
    "stampbook_idempotent_replays",
    "Writes answered with the stored response of an earlier request with the same key.",
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "stampbook_rate_limited", "Requests refused by a rate limit (1201).", registry=REGISTRY
)
WEBHOOK_ATTEMPTS = Counter(
    "stampbook_webhook_attempts",
    "Webhook delivery attempts, by outcome: delivered, retry, failed, gone.",
    ["outcome"],
    registry=REGISTRY,
)
WEBHOOK_ATTEMPT_SECONDS = Histogram(
    "stampbook_webhook_attempt_duration_seconds",
    "Time one delivery attempt took (the receiver's answer, or the error).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0),
    registry=REGISTRY,
)
WEBHOOK_DELIVERY_SECONDS = Histogram(
    "stampbook_webhook_delivery_latency_seconds",
    "Time from a message's change to its delivery, retries included.",
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0, 36000.0, 86400.0),
    registry=REGISTRY,
)
DB_POOL = Gauge(
    "stampbook_db_pool_connections",
    "Database connections per pool (write, read, driver) and state (size, in_use, "
    "idle, waiting), summed over the live workers; sampled every few seconds and "
    "at each scrape.",
    ["pool", "state"],
    multiprocess_mode="livesum",
    registry=REGISTRY,
)

_CHANGES = {"ADD": STAMPS_ADDED, "REMOVE": STAMPS_REMOVED, "USE": REWARDS_REDEEMED}
# Counted as plain integers on the request path and published to the
# prometheus_client values by ``flush`` (each worker every second, and the
# worker answering a scrape first): a value's increment takes a lock and, in
# multiprocess mode, writes its file, several microseconds each.
_PENDING_CHANGES = dict.fromkeys(_CHANGES, 0)
_REFUSALS: dict[int, Any] = {}
_RATE_LIMITED_CODE = 1201


def count_change(action: str) -> None:
    """Count one accepted change of the ledger's ``action`` (ADD, REMOVE, USE;
    other actions are not counted)."""
    if action in _PENDING_CHANGES:
        _PENDING_CHANGES[action] += 1


def count_refusal(code: int) -> None:
    """Count one envelope answered with ``code`` (non-zero)."""
    child = _REFUSALS.get(code)
    if child is None:
        child = _REFUSALS[code] = REFUSALS.labels(str(code))
    child.inc()
    if code == _RATE_LIMITED_CODE:
        RATE_LIMITED.inc()


def count_webhook_attempt(outcome: str, seconds: float, delivered_after: float | None) -> None:
    """Count one delivery attempt; ``delivered_after`` is the message's age when
    it was delivered (None when this attempt did not deliver it)."""
    WEBHOOK_ATTEMPTS.labels(outcome).inc()
    WEBHOOK_ATTEMPT_SECONDS.observe(seconds)
    if delivered_after is not None:
        WEBHOOK_DELIVERY_SECONDS.observe(max(delivered_after, 0.0))


def sample_pools(use: dict[str, dict[str, int]]) -> None:
    """Record this worker's pool use, as ``Database.pool_use`` reports it."""
    for pool, states in use.items():
        for state, value in states.items():
            DB_POOL.labels(pool, state).set(value)


_BOUNDS = REQUEST_SECONDS._upper_bounds[:-1]  # the finite bounds; +Inf is the last bucket


class _RequestTally:
    """The requests of one route and status not yet published: a count, the
    sum of their durations and the histogram's buckets, as plain numbers."""

    __slots__ = ("buckets", "count", "histogram", "requests", "total")

    def __init__(self, template: str, status: int) -> None:
        self.requests = REQUESTS.labels(template, str(status))
        self.histogram = REQUEST_SECONDS.labels(template)
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(_BOUNDS) + 1)

    def publish(self) -> None:
        if not self.count:
            return
        self.requests.inc(self.count)
        # Histogram.observe, for many observations at once: the same values it
        # increments (non-cumulative buckets, then the sum).
        self.histogram._sum.inc(self.total)
        for index, count in enumerate(self.buckets):
            if count:
                self.histogram._buckets[index].inc(count)
                self.buckets[index] = 0
        self.count = 0
        self.total = 0.0


_TALLIES: dict[tuple[str, int], _RequestTally] = {}


def flush() -> None:
    """Publish what was counted since the last flush to the metrics' values
    (in multiprocess mode: to this worker's files, where a scrape reads them)."""
    for action, count in _PENDING_CHANGES.items():
        if count:
            _CHANGES[action].inc(count)
            _PENDING_CHANGES[action] = 0
    for tally in _TALLIES.values():
        tally.publish()


def observe_request(scope: Scope, status: int, seconds: float) -> None:
    """Count one finished HTTP request by route template and status, and time it.

    An observer of ``kit.access.Observed``, the outermost middleware (the app
    registers it), so refusals answered before routing (a bad key, a rate
    limit, a body too large) are counted too, under ``unmatched``: the router
    never ran for them.
    """
    route = scope.get("route")
    template = getattr(route, "path", None) or UNMATCHED
    tally = _TALLIES.get((template, status))
    if tally is None:
        tally = _TALLIES[(template, status)] = _RequestTally(template, status)
    tally.count += 1
    tally.total += seconds
    tally.buckets[bisect_left(_BOUNDS, seconds)] += 1


def may_scrape(scope: Scope, authorization: str | None, token: str | None) -> bool:
    """A loopback client may read /metrics; anyone else only with
    ``Authorization: Bearer <token>`` when a token is set."""
    try:
        if ipaddress.ip_address(client_address(scope)).is_loopback:
            return True
    except ValueError:
        pass
    if not token or not authorization:
        return False
    return hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode())


def exposition(extra: Iterable[Metric] = ()) -> bytes:
    """The text format of every metric, the server's sums in multiprocess
    mode, followed by ``extra`` (values computed for this scrape). This
    worker's counts are flushed first; the others' are at most a second old."""
    flush()
    if MULTIPROCESS:
        mark_dead_workers()
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(_Fixed(list(extra)))
    return text + generate_latest(scraped)


def gauge(name: str, documentation: str, value: float) -> Metric:
    """A gauge computed at scrape time (e.g. the webhook queue's depth)."""
    return GaugeMetricFamily(name, documentation, value=value)


class _Fixed:
    """A collector of metrics already computed."""

    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        """The metrics given."""
        return self._metrics


_LIVE_FILE = re.compile(r"^gauge_live\w*_(\d+)\.db$")


def mark_dead_workers() -> None:
    """Forget the live gauges of worker processes that are gone (killed or
    restarted by the supervisor): their pool use no longer exists. Their
    counters stay, as the server did count those requests."""
    directory = os.environ.get(MULTIPROC_DIR_ENV)
    if not directory:
        return
    for path in Path(directory).glob("gauge_live*.db"):
        found = _LIVE_FILE.match(path.name)
        if found and not _alive(int(found.group(1))):
            multiprocess.mark_process_dead(int(found.group(1)), directory)  # type: ignore[no-untyped-call]


def worker_exiting() -> None:
    """Called as a worker shuts down: its counts are published, its live
    gauges go with it."""
    flush()
    directory = os.environ.get(MULTIPROC_DIR_ENV)
    if MULTIPROCESS and directory:
        multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare_directory(directory: str | None) -> str:
    """The directory a server's workers keep their values in, emptied: the one
    given (``PROMETHEUS_MULTIPROC_DIR`` set by the operator), else a new
    private one. Values left by an earlier run would otherwise add to this one's."""
    if directory is None:
        return tempfile.mkdtemp(prefix="stampbook-metrics-")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    return str(path)
