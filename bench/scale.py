"""The scale scenario: does a call cost more when the account is large?

Two databases of the same kind, seeded with SQL (``bench/seed.py``) in the same
shape: a small second account of 100 stamps (seeded first, so its ids are the
lowest: the worst case for a scan that walks the ids downwards), and the large
account with its stamps over 10 cards, two stamps per userId, the oldest
0.1 % inactive (old cards get switched off), one in 50 used, and five ledger
rows per stamp. The small database has 2,000 stamps in the large account; the large one 1,000,000 on
PostgreSQL (5,000,000 ledger rows) and 200,000 on SQLite (1,000,000 rows).

Each is served by Stampbook as shipped. Every call is made 200 times,
sequentially on one keep-alive connection, in chunks of 50 alternating between
the two databases; the table compares the p50s.
"""

from __future__ import annotations

import contextlib
import random
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness import (
    ACCOUNT_SQL,
    WEBHOOK_SQL,
    Processes,
    api_call,
    execute,
    fetch_int,
    free_port,
    full_server,
    migrate,
    postgres_database,
    server_env,
    settle,
    stampbook,
)
from report import ScaleRow
from seed import Shape, seed_stamps, valid_dates

SMALL_STAMPS = 2_000
LARGE_STAMPS = {"postgresql": 1_000_000, "sqlite": 200_000}
SECOND_ACCOUNT_STAMPS = 100
CARDS = 10
ADDS = 4  # ledger rows per stamp: one CREATE and four ADDs
SETTLE = {"postgresql": "VACUUM ANALYZE, CHECKPOINT", "sqlite": "WAL checkpoint"}
CALLS = 200
LIST_PAGE = 20  # the API's default page size (kit/params.py)
CHUNK = 50


@dataclass
class Target:
    """One seeded, served database."""

    base: str
    key: str
    small_key: str
    shape: Shape
    first: int


def _key(env: dict[str, str], account: str) -> str:
    return stampbook(env, "apikey", "create", "--account", account).strip().splitlines()[-1]


def _prepare(procs: Processes, name: str, url: str, sink: str, stamps: int) -> tuple[Target, str]:
    """Migrate, keys, endpoints, serve, cards, seed; returns the target and a note."""
    base = f"http://127.0.0.1:{free_port()}"
    env = server_env(url, base)
    migrate(env)
    key, small_key = _key(env, "bench"), _key(env, "small")
    accounts = {a: fetch_int(url, ACCOUNT_SQL.format(name=a)) for a in ("bench", "small")}
    for account_idx in accounts.values():
        execute(url, WEBHOOK_SQL.format(account=account_idx, url=f"{sink}/hook"))
    full_server(procs, name, url, base)

    def card(api_key: str) -> int:
        body = {"cardNm": "Scale", "maxStamps": 100}
        return int(api_call(base, api_key, "POST", "/api/stamp/v1/card/create", body))

    small_card = card(small_key)
    cards = [card(key) for _ in range(CARDS)]
    if cards != list(range(cards[0], cards[0] + CARDS)):
        raise RuntimeError(f"cards are not contiguous: {cards}")
    started = time.monotonic()
    seed_stamps(url, Shape(accounts["small"], small_card, 1, SECOND_ACCOUNT_STAMPS, adds=ADDS))
    shape = Shape(
        accounts["bench"],
        cards[0],
        CARDS,
        stamps,
        adds=ADDS,
        # At least a page more than a list shows: on the small database 0.1 % was
        # 2 stamps, so `list?activeYn=N` rendered 2 items there against a full
        # page of 20 on the large one, and the ratio measured the page, not the
        # data's size (it was 1.30 on SQLite for that reason alone).
        inactive_oldest=max(stamps // 1000, LIST_PAGE + 1),
        used_every=50,
    )
    first = seed_stamps(url, shape)
    seeded = time.monotonic() - started
    kind = "sqlite" if url.startswith("sqlite") else "postgresql"
    settle(url)
    settled = time.monotonic() - started - seeded
    note = (
        f"{name}: {stamps:,} stamps and {stamps * (ADDS + 1):,} ledger rows seeded in "
        f"{seeded:.1f} s, settled ({SETTLE[kind]}) in {settled:.1f} s"
    )
    print(f"  {note}", flush=True)
    return Target(base, key, small_key, shape, first), note


Call = Callable[[Target], tuple[str, str, dict[str, Any] | None, str]]


def _stamp(t: Target, usable: bool) -> int:
    while True:
        i = random.randint(1, t.shape.stamps)
        if not usable or t.shape.usable(i):
            return t.first + i - 1


def _calls() -> dict[str, Call]:
    strt, end = valid_dates()
    return {
        "add": lambda t: (
            "PUT",
            "/api/stamp/v1/add",
            {"stampIdx": _stamp(t, True)},
            t.key,
        ),
        "validate": lambda t: (
            "GET",
            f"/api/stamp/v1/validate?stampIdx={_stamp(t, True)}",
            None,
            t.key,
        ),
        "create": lambda t: (
            "POST",
            "/api/stamp/v1/create",
            {"cardIdx": t.shape.first_card, "strtYmd": strt, "endYmd": end},
            t.key,
        ),
        "history": lambda t: (
            "GET",
            f"/api/stamp/v1/history?stampIdx={_stamp(t, False)}",
            None,
            t.key,
        ),
        "list": lambda t: ("GET", "/api/stamp/v1/list", None, t.key),
        "list cardIdx": lambda t: (
            "GET",
            f"/api/stamp/v1/list?cardIdx={t.shape.first_card + random.randrange(CARDS)}",
            None,
            t.key,
        ),
        "list userId": lambda t: (
            "GET",
            f"/api/stamp/v1/list?userId={t.shape.user_id(random.randint(1, t.shape.stamps))}",
            None,
            t.key,
        ),
        "list activeYn=N": lambda t: ("GET", "/api/stamp/v1/list?activeYn=N", None, t.key),
        "list useYn=Y": lambda t: ("GET", "/api/stamp/v1/list?useYn=Y", None, t.key),
        "list small account": lambda t: ("GET", "/api/stamp/v1/list", None, t.small_key),
    }


def _timed(client: httpx.Client, target: Target, call: Call) -> tuple[float, bool]:
    method, path, body, key = call(target)
    headers = {"Authorization": f"APIKey {key}"}
    if method != "GET":
        headers["Idempotency-Key"] = f"scale-{secrets.token_hex(8)}"
    started = time.perf_counter()
    response = client.request(method, target.base + path, json=body, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    ok = response.status_code == 200 and response.json().get("code") == 0
    return elapsed, ok


def measure(small: Target, large: Target) -> list[tuple[str, float, float, int]]:
    """Each call's p50 (ms) on both, alternating chunks; and its failures."""
    rows = []
    with httpx.Client(timeout=30) as client:
        for name, call in _calls().items():
            times: dict[str, list[float]] = {"small": [], "large": []}
            failures = 0
            for chunk in range(CALLS // CHUNK):
                order = [("small", small), ("large", large)]
                for label, target in order if chunk % 2 == 0 else order[::-1]:
                    for _ in range(CHUNK):
                        elapsed, ok = _timed(client, target, call)
                        times[label].append(elapsed)
                        failures += not ok
            p50s = statistics.median(times["small"]), statistics.median(times["large"])
            print(f"  {name:<20} small {p50s[0]:7.2f} ms  large {p50s[1]:7.2f} ms", flush=True)
            rows.append((name, p50s[0], p50s[1], failures))
    return rows


@contextlib.contextmanager
def _database(database: str, tmp: Path, label: str) -> Iterator[str]:
    if database == "postgresql":
        with postgres_database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp / f'scale-{label}.db'}"


def run(
    procs: Processes, database: str, tmp: Path, sink: str, stamps: int | None
) -> tuple[list[ScaleRow], list[str]]:
    """The scale scenario on one kind of database; the rows and the seeding notes."""
    print(f"{database}: scale", flush=True)
    large_stamps = stamps or LARGE_STAMPS[database]
    with (
        _database(database, tmp, "small") as small_url,
        _database(database, tmp, "large") as large_url,
    ):
        try:
            small, small_note = _prepare(
                procs, f"scale-small-{database}", small_url, sink, SMALL_STAMPS
            )
            large, large_note = _prepare(
                procs, f"scale-large-{database}", large_url, sink, large_stamps
            )
            rows = measure(small, large)
        finally:
            procs.stop_all_but("webhook-sink")
    found = [ScaleRow(database, name, s, lg, failures) for name, s, lg, failures in rows]
    return found, [small_note, large_note]
