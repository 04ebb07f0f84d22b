"""The closing report of ``make bench``: the tables, the targets, the checks.

Only the rows of Stampbook as shipped (server ``stampbook``) are held to the
targets; any other Stampbook row is an extra, printed beside them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from harness import CONNECTIONS, WORKERS, Profile, Result, fetch_int

# Targets from the issue.
RATIO_TARGET = 0.8
P99_TARGET_MS = 50.0
P99_BARE_FACTOR = 1.5
RSS_TARGET_MB = 150.0
SCALE_TARGET = 1.3
STALL_MS = 50.0  # as harness.STALL_MS, the lateness that counts as a machine stall


@dataclass
class ScaleRow:
    """One call's p50 on the small and the large database."""

    database: str
    call: str
    small_ms: float
    large_ms: float
    failures: int


@dataclass
class Report:
    """Everything the closing table prints."""

    results: list[Result] = field(default_factory=list)
    rss_mb: dict[str, list[float]] = field(default_factory=dict)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    deliveries: dict[str, int] = field(default_factory=dict)
    scale: list[ScaleRow] = field(default_factory=list)
    scale_notes: list[str] = field(default_factory=list)
    transport: str = ""


CHECK_SQL = {
    "ledger": """
        SELECT count(*) FROM stamp s
        LEFT JOIN (SELECT stamp_idx, SUM(stamps_after - stamps_before) AS delta
                   FROM stamp_event GROUP BY stamp_idx) e ON e.stamp_idx = s.stamp_idx
        WHERE s.stamps <> COALESCE(e.delta, 0)""",
    "bounds": """
        SELECT count(*) FROM stamp s JOIN card c ON c.card_idx = s.card_idx
        WHERE s.stamps > c.max_stamps OR s.stamps < 0""",
    "keys": """
        SELECT count(*) FROM (SELECT account_idx, idempotency_key FROM stamp_event
                              WHERE idempotency_key IS NOT NULL
                              GROUP BY account_idx, idempotency_key HAVING count(*) > 1) twice""",
    "outbox": """
        SELECT (SELECT count(*) FROM stamp_event WHERE action = 'ADD' AND key_idx IS NOT NULL)
             - (SELECT count(*) FROM webhook_message WHERE event_type = 'stamp.added')""",
    "events": "SELECT count(*) FROM stamp_event WHERE action = 'ADD' AND key_idx IS NOT NULL",
    "delivered": "SELECT count(*) FROM webhook_message WHERE status = 'delivered'",
}


def check_ledger(database: str, database_url: str, report: Report) -> None:
    """After the load: counts equal the ledger, no stamp beyond its maximum, and so on."""
    got = {name: fetch_int(database_url, sql) for name, sql in CHECK_SQL.items()}
    report.checks += [
        (
            f"{database}: every stamp count equals its ledger sum "
            f"({got['events']} API adds; the baseline's too)",
            got["ledger"] == 0,
            f"{got['ledger']} stamps differ",
        ),
        (
            f"{database}: no stamp above its maximum or below zero",
            got["bounds"] == 0,
            f"{got['bounds']} stamps out of range",
        ),
        (
            f"{database}: no Idempotency-Key in the ledger twice",
            got["keys"] == 0,
            f"{got['keys']} keys twice",
        ),
        (
            f"{database}: one stamp.added outbox message per API add "
            f"({got['delivered']} messages delivered by the end of the load)",
            got["outbox"] == 0,
            f"off by {got['outbox']}",
        ),
    ]


def _find(report: Report, scenario: str, database: str, server: str) -> Result | None:
    for result in report.results:
        if (result.scenario, result.database, result.server) == (scenario, database, server):
            return result
    return None


def _load_table(report: Report, profile: Profile) -> None:
    print(
        f"Stampbook bench ({profile.name}: {CONNECTIONS} connections, {WORKERS} workers, "
        f"{profile.warmup} s warm-up, {profile.rounds} x {profile.duration} s measured, "
        f"servers alternating, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
        "stampbook = `stampbook serve` with its defaults, PostgreSQL over TCP)"
    )
    header = (
        f"| {'scenario':<14} | {'database':<10} | {'server':<22} | {'req/s':>7} | "
        f"{'p50 ms':>6} | {'p99 ms':>6} | {'errors':>6} | {'refused':>7} | {'/bare':>5} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for r in report.results:
        shown = ""
        if r.server != "bare":
            bare = _find(report, r.scenario, r.database, "bare")
            if bare and bare.rps:
                shown = f"{r.rps / bare.rps:.2f}"
        name = r.server if r.server in ("stampbook", "bare") else f"{r.server} (extra)"
        print(
            f"| {r.scenario:<14} | {r.database:<10} | {name:<22} | {r.rps:7.0f} | "
            f"{r.p50_ms:6.2f} | {r.p99_ms:6.2f} | {r.errors:6d} | {r.refusals:7d} | {shown:>5} |"
        )
    if report.transport:
        print(f"PostgreSQL: {report.transport} (TCP) for stampbook and bare; extras say theirs.")
    stalled = "; ".join(
        f"{r.server} {r.database} {r.scenario}: {len(r.stalls_ms)} round(s), worst "
        f"{max(r.stalls_ms):.0f} ms"
        for r in report.results
        if r.stalls_ms
    )
    print(f"Measured rounds during which the machine stalled (>= {STALL_MS:.0f} ms): ", end="")
    print(f"{stalled or 'none'}.")
    for database, count in report.deliveries.items():
        print(f"Webhook deliveries received by the loopback sink by the end of {database}: {count}")
    print()
    print("Resident memory per worker after the load:")
    for name, sizes in report.rss_mb.items():
        shown = ", ".join(f"{size:.0f} MB" for size in sizes) or "n/a"
        print(f"  {name:<36} {shown}")


def _scale_table(report: Report) -> None:
    print()
    print("Scale: p50 of sequential calls, large database against small, same run")
    for note in report.scale_notes:
        print(f"  {note}")
    print(f"| {'database':<10} | {'call':<22} | {'small ms':>8} | {'large ms':>8} | {'ratio':>5} |")
    print(f"|{'-' * 12}|{'-' * 24}|{'-' * 10}|{'-' * 10}|{'-' * 7}|")
    for row in report.scale:
        ratio = row.large_ms / row.small_ms if row.small_ms else 0.0
        print(
            f"| {row.database:<10} | {row.call:<22} | {row.small_ms:8.2f} | {row.large_ms:8.2f} | "
            f"{ratio:5.2f} |" + (f" {row.failures} failed" if row.failures else "")
        )


def targets(report: Report) -> list[tuple[str, bool]]:
    """Every target with whether it was met; only the as-shipped rows count."""
    found: list[tuple[str, bool]] = []
    for database in ("postgresql", "sqlite"):
        for scenario in ("add", "validate"):
            full = _find(report, scenario, database, "stampbook")
            bare = _find(report, scenario, database, "bare")
            if not (full and bare):
                continue
            ratio = full.rps / bare.rps
            found.append(
                (
                    f"{database} {scenario}: {full.rps:.0f}/{bare.rps:.0f} req/s = "
                    f"{ratio:.2f} of the bare {scenario}, target >= {RATIO_TARGET}",
                    ratio >= RATIO_TARGET,
                )
            )
            if scenario == "add":
                bound = max(P99_TARGET_MS, P99_BARE_FACTOR * bare.p99_ms)
                found.append(
                    (
                        f"{database} add: p99 {full.p99_ms:.1f} ms < {bound:.1f} ms "
                        f"(max of 50 ms and 1.5 x bare p99 {bare.p99_ms:.1f} ms)",
                        full.p99_ms < bound,
                    )
                )
    for name, sizes in report.rss_mb.items():
        if name.startswith("stampbook (") and sizes:
            found.append(
                (
                    f"{name}: RSS {max(sizes):.0f} MB < {RSS_TARGET_MB:.0f} MB per worker",
                    max(sizes) < RSS_TARGET_MB,
                )
            )
    errors = sum(r.errors for r in report.results)
    if report.results:
        found.append((f"no errors under load ({errors})", errors == 0))
    for row in report.scale:
        ratio = row.large_ms / row.small_ms if row.small_ms else float("inf")
        found.append(
            (
                f"scale {row.database} {row.call}: p50 {row.large_ms:.2f} ms = {ratio:.2f} x "
                f"the small database's {row.small_ms:.2f} ms, target <= {SCALE_TARGET}"
                + (f"; {row.failures} calls failed" if row.failures else ""),
                ratio <= SCALE_TARGET and row.failures == 0,
            )
        )
    return found


def print_report(report: Report, profile: Profile) -> bool:
    """The closing tables, the targets and the checks; True when everything was met."""
    print()
    if report.results:
        _load_table(report, profile)
    if report.scale:
        _scale_table(report)
    print()
    print("Targets:")
    met_all = True
    for text, met in targets(report):
        print(f"  [{'met' if met else 'MISSED'}] {text}")
        met_all = met_all and met
    print()
    print("Correctness:")
    passed = True
    for text, ok, detail in report.checks:
        print(f"  {'PASS' if ok else 'FAIL'} {text}" + ("" if ok else f": {detail}"))
        passed = passed and ok
    missed = sum(1 for _, met in targets(report) if not met)
    verdict = "PASS" if passed else "FAIL"
    print(f"{verdict}; targets: {'all met' if met_all else f'{missed} missed'}")
    return passed and met_all
