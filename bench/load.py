"""The load half of the bench: ``wrk`` rounds, their merged percentiles, and
the probe that reports machine stalls. ``measure`` runs one scenario on
several servers in alternating rounds (used by ``bench/run.py``)."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import threading
import time
from typing import Any

from harness import CONNECTIONS, LUA, PERCENTILES, WRK_THREADS, Profile, Result, Seeded, settle

# A round during which a thread that only sleeps 5 ms at a time woke this much
# late was measured while the whole machine stalled (seen here: about 100 ms,
# in every process at once). Such a stall lands on whichever server is being
# measured and can decide its p99, so the table reports the rounds that had one.
STALL_MS = 50.0


class StallProbe:
    """A thread that sleeps 5 ms at a time and keeps the worst lateness."""

    def __init__(self) -> None:
        self.worst_ms = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StallProbe:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            time.sleep(0.005)
            late = (time.perf_counter() - started) * 1000 - 5
            self.worst_ms = max(self.worst_ms, late)


def wrk(base: str, seconds: int, env: dict[str, str]) -> dict[str, Any]:
    argv = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        base,
    ]
    done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True)
    match = re.search(r"^BENCH_RESULT (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed:\n{done.stdout}\n{done.stderr}")
    parsed: dict[str, Any] = json.loads(match.group(1))
    return parsed


def merged_percentile(rounds: list[dict[str, Any]], q: float) -> float:
    """The q-th percentile (us) of several rounds' latencies taken together.

    Each round's distribution is known at PERCENTILES; the mixture's quantile is
    the latency at which the rounds' request-weighted fractions below sum to q.
    """
    total = sum(r["requests"] for r in rounds)

    def below(value: float) -> float:
        count = 0.0
        for r in rounds:
            points = r["percentiles_us"]
            fraction = 0.0
            for pct, latency in zip(PERCENTILES, points, strict=True):
                if latency <= value:
                    fraction = pct / 100
            count += fraction * r["requests"]
        return count

    candidates = sorted({v for r in rounds for v in r["percentiles_us"]})
    for value in candidates:
        if below(value) >= q / 100 * total:
            return float(value)
    return float(candidates[-1])


def measure(
    profile: Profile,
    targets: list[tuple[str, str]],
    seeded: Seeded,
    *,
    scenario: str,
    mode: str,
    database: str,
    database_url: str,
) -> list[Result]:
    """Settle the database, warm up every target, then measure them in
    alternating rounds.

    The machine is shared (other work may start at any moment), so the
    servers take turns, in alternating order, and each sees the same conditions.
    """
    settle(database_url)
    env = {
        "BENCH_MODE": mode,
        "BENCH_KEY": seeded.key,
        "BENCH_FIRST": str(seeded.first),
        "BENCH_COUNT": str(seeded.count),
        "BENCH_HOT": str(seeded.hot),
        "BENCH_SEED": str(secrets.randbelow(1_000_000)),
    }
    for _, base in targets:
        wrk(base, profile.warmup, {**env, "BENCH_RUN": f"w{secrets.token_hex(6)}"})
    outputs: dict[str, list[dict[str, Any]]] = {server: [] for server, _ in targets}
    stalls: dict[str, list[float]] = {server: [] for server, _ in targets}
    for round_no in range(profile.rounds):
        order = targets if round_no % 2 == 0 else targets[::-1]
        for server, base in order:
            run = {**env, "BENCH_RUN": f"m{secrets.token_hex(6)}"}
            with StallProbe() as probe:
                outputs[server].append(wrk(base, profile.duration, run))
            if probe.worst_ms >= STALL_MS:
                stalls[server].append(probe.worst_ms)
    results = []
    for server, _ in targets:
        rounds = outputs[server]
        requests = sum(r["requests"] for r in rounds)
        result = Result(
            scenario=scenario,
            database=database,
            server=server,
            requests=requests,
            rps=requests / (sum(r["duration_us"] for r in rounds) / 1e6),
            p50_ms=merged_percentile(rounds, 50) / 1000,
            p99_ms=merged_percentile(rounds, 99) / 1000,
            errors=sum(r["socket_errors"] + r["non_2xx"] for r in rounds),
            refusals=sum(r["refusals"] for r in rounds),
            stalls_ms=stalls[server],
        )
        print(
            f"  {server:<22} {database:<10} {scenario:<14} {result.rps:8.0f} req/s"
            f"  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
            f"  errors {result.errors}  refusals {result.refusals}",
            flush=True,
        )
        results.append(result)
    return results
