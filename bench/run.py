"""``make bench`` and ``make bench-quick``: Stampbook as shipped against the least a server can do.

Everything the run needs is started here and stopped here, whatever happens:
a fresh PostgreSQL database (created on the local server over TCP, dropped
after) and a temporary SQLite file, both migrated with ``stampbook db
upgrade``; a key from ``stampbook apikey create``; a card through the API and
thousands of stamps seeded with SQL; a loopback webhook sink (``bench/sink.py``)
to which one endpoint per account is subscribed, so that every add writes an
outbox row the dispatcher really delivers; then the servers, two uvicorn
workers each:

- Stampbook **as shipped**: ``stampbook serve --workers 2`` with every default
  (access log, dispatcher, auth checks, pools) except a rate limit high enough
  never to throttle and ``STAMPBOOK_WEBHOOK_ALLOW_PRIVATE=true`` (the sink is on
  loopback), PostgreSQL over TCP 127.0.0.1:5432;
- the bare baseline (``bench/bare_app.py``): PostgreSQL, one statement per add
  and one per validate over raw asyncpg; SQLite, the same statements on a
  stdlib ``sqlite3`` connection.

``wrk`` (32 connections, two threads) drives each scenario; the servers take
turns in alternating rounds. Afterwards the ledger is checked, and
``bench/scale.py`` compares each call's p50 on a large database with a small one.
``make bench`` exits non-zero when a target is missed or a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

import dashboard_scale
import report as table
import scale
from harness import (
    ACCOUNT_SQL,
    MIGRATION,
    WEBHOOK_SQL,
    Processes,
    Profile,
    Seeded,
    Server,
    api_call,
    bare_server,
    execute,
    fetch_int,
    free_port,
    full_server,
    migrate,
    postgres_database,
    server_env,
    sink_count,
    stampbook,
    start_sink,
    via_socket,
    wait_ready,
)
from load import measure
from report import Report
from seed import Shape, seed_stamps, valid_dates

MAX_STAMPS = 100
HOT_START = 50

FULL = Profile("full", warmup=5, rounds=4, duration=5, stamps=4000, hot=True)
QUICK = Profile("quick", warmup=1, rounds=2, duration=2, stamps=2000, hot=False)

# The extra rows (--extras): the settings the bench used to run Stampbook with.
# Shown beside the target rows, never counted.
EXTRA_NAME = "stampbook socket+cache"
EXTRA_SETTINGS = {
    "STAMPBOOK_AUTH_CACHE_SECONDS": "5",
    "STAMPBOOK_ACCESS_LOG": "false",
    "STAMPBOOK_DISPATCHER_ENABLED": "false",
}


def setup_database(
    procs: Processes, name: str, database_url: str, profile: Profile, sink: str
) -> tuple[Server, str, Server, str, Seeded]:
    """Migrate, key, endpoint, serve, seed: the as-shipped Stampbook, the baseline, the stamps."""
    base = f"http://127.0.0.1:{free_port()}"
    env = server_env(database_url, base)
    migrate(env)
    key = stampbook(env, "apikey", "create", "--account", "bench").strip().splitlines()[-1]
    account_idx = fetch_int(database_url, ACCOUNT_SQL.format(name="bench"))
    execute(database_url, WEBHOOK_SQL.format(account=account_idx, url=f"{sink}/hook"))
    # Both start at once: a worker's start-up is seconds of CPU on this machine.
    server = full_server(procs, f"stampbook-{name}", database_url, base, wait=False)
    bare, bare_base = bare_server(
        procs, f"bare-{name}", database_url, account_idx, base, wait=False
    )
    wait_ready(server, base, "/healthz")
    wait_ready(bare, bare_base, "/openapi.json")
    print(f"  stampbook-{name} access log: {server.log}", flush=True)
    body = {"cardNm": "Bench", "maxStamps": MAX_STAMPS}
    card = int(api_call(base, key, "POST", "/api/stamp/v1/card/create", body))
    shape = Shape(account_idx=account_idx, first_card=card, cards=1, stamps=profile.stamps)
    first = seed_stamps(database_url, shape)
    strt, end = valid_dates()
    body = {"cardIdx": card, "strtYmd": strt, "endYmd": end}
    hot = int(api_call(base, key, "POST", "/api/stamp/v1/create", body))
    api_call(base, key, "PUT", "/api/stamp/v1/update", {"stampIdx": hot, "stamps": HOT_START})
    return server, base, bare, bare_base, Seeded(key, account_idx, first, profile.stamps, hot)


def check_same_validate(
    database: str, full: str, bare: str, seeded: Seeded, report: Report
) -> None:
    """The baseline's validate answers the same fields with the same values."""
    path = f"/api/stamp/v1/validate?stampIdx={seeded.first}"
    mine = api_call(full, seeded.key, "GET", path, {})
    theirs = httpx.get(bare + path, timeout=10).json()["result"]
    differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    report.checks.append(
        (
            f"{database}: the baseline's validate answers Stampbook's {len(mine)} fields",
            not differ,
            f"differ: {differ}",
        )
    )


def run_database(
    procs: Processes,
    profile: Profile,
    report: Report,
    *,
    database: str,
    url: str,
    sink: str,
    extras: bool,
) -> None:
    """Seed, then every scenario on one database, Stampbook and the baseline alternating."""
    full, full_base, bare, bare_base, seeded = setup_database(procs, database, url, profile, sink)
    check_same_validate(database, full_base, bare_base, seeded, report)
    targets = [("stampbook", full_base), ("bare", bare_base)]
    servers = {"stampbook": full, "bare": bare}
    if extras and database == "postgresql":
        extra_base = f"http://127.0.0.1:{free_port()}"
        extra = full_server(procs, "extra", via_socket(url), extra_base, extra=EXTRA_SETTINGS)
        targets.append((EXTRA_NAME, extra_base))
        servers[EXTRA_NAME] = extra
    scenarios = [("add", "add"), ("validate", "validate")]
    if profile.hot:
        scenarios.append(("hot add/remove", "hot"))
    for scenario, mode in scenarios:
        report.results += measure(
            profile,
            targets,
            seeded,
            scenario=scenario,
            mode=mode,
            database=database,
            database_url=url,
        )
    for name, server in servers.items():
        report.rss_mb[f"{name} ({database})"] = server.worker_rss_mb()
    for server in servers.values():
        procs.stop(server)
    report.deliveries[database] = sink_count(sink)
    table.check_ledger(database, url, report)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the short regression run")
    parser.add_argument("--only", choices=("postgresql", "sqlite"), help="one database only")
    parser.add_argument(
        "--extras",
        action="store_true",
        help="also Stampbook with the old bench settings (socket, auth cache 5 s, no access "
        "log, no dispatcher): an extra row, never a target",
    )
    parser.add_argument("--no-scale", action="store_true", help="skip the scale scenario")
    parser.add_argument(
        "--scale-only", action="store_true", help="only the scale scenario (make bench-scale)"
    )
    parser.add_argument(
        "--scale-stamps", type=int, help="large database's stamps (default 1,000,000 / 200,000)"
    )
    parser.add_argument(
        "--dashboard-only", action="store_true", help="only the dashboard at scale (#14)"
    )
    parser.add_argument(
        "--revision", default="head", help="migrate to this revision (before/after a migration)"
    )
    args = parser.parse_args()
    MIGRATION["revision"] = args.revision
    if args.dashboard_only:
        return dashboard(args.only)
    profile = QUICK if args.quick else FULL
    if shutil.which("wrk") is None:
        print("wrk is required (apt-get install wrk, or `make bench` installs it)", file=sys.stderr)
        return 2
    print(f"load average before the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    report = Report()
    databases = [args.only] if args.only else ["postgresql", "sqlite"]
    with tempfile.TemporaryDirectory(prefix="stampbook-bench-") as tmp:
        procs = Processes(Path(tmp))

        def on_signal(signum: int, _frame: Any) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, on_signal)
        try:
            sink = start_sink(procs)
            for database in databases if not args.scale_only else []:
                print(f"{database}: load", flush=True)
                if database == "postgresql":
                    with postgres_database() as url:
                        report.transport = url.split("@", 1)[1]
                        try:
                            run_database(
                                procs, profile, report, database=database, url=url,
                                sink=sink, extras=args.extras,
                            )  # fmt: skip
                        finally:
                            # Stopped before the database is dropped, whatever happened.
                            procs.stop_all_but("webhook-sink")
                else:
                    url = f"sqlite:///{Path(tmp) / 'bench.db'}"
                    run_database(
                        procs, profile, report, database=database, url=url,
                        sink=sink, extras=False,
                    )  # fmt: skip
            if args.scale_only or not (args.quick or args.no_scale):
                for database in databases:
                    rows, notes = scale.run(procs, database, Path(tmp), sink, args.scale_stamps)
                    report.scale += rows
                    report.scale_notes += notes
        except BaseException:
            for server in procs.started:
                with contextlib.suppress(OSError):
                    tail = server.log.read_text(errors="replace")[-2000:]
                    print(f"--- {server.name} log (tail) ---\n{tail}", file=sys.stderr)
            raise
        finally:
            procs.stop_all()
    met = table.print_report(report, profile)
    if not (args.quick or args.no_scale or args.scale_only):
        met = dashboard(args.only) == 0 and met
    return 0 if met else 1


def dashboard(only: str | None) -> int:
    """The dashboard-at-scale scenario (bench/dashboard_scale.py) on each database."""
    cases: list[dashboard_scale.Case] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="stampbook-dashboard-") as tmp:
        for database in [only] if only else ["postgresql", "sqlite"]:
            found, said = dashboard_scale.run(database, Path(tmp))
            cases += found
            notes += said
    return 0 if dashboard_scale.print_table(cases, notes) else 1


if __name__ == "__main__":
    sys.exit(main())
