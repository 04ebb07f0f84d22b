"""CPU time per request, and py-spy profiles, of Stampbook as shipped and the baseline.

Throughput on a shared machine moves with whatever else runs; the CPU a
request costs does much less. This drives each server with ``wrk`` (the same
script as ``make bench``) for a fixed time and divides the CPU its worker
processes spent (``/proc/<pid>/stat``, user + system) by the requests
answered; on PostgreSQL also the CPU of the database's backends serving this
run's database. Servers alternate, rounds repeat, and every round is printed.

    .venv/bin/python bench/cpu.py                       # both databases, add and validate
    .venv/bin/python bench/cpu.py --only sqlite --modes add --rounds 3
    .venv/bin/python bench/cpu.py --profile /tmp/prof   # also py-spy on one worker of each

``--profile DIR`` records one worker of each server (Stampbook and the bare
baseline) with py-spy
(``--format raw``: collapsed stacks) in a separate pass (sampling costs the
worker CPU, so it is not measured at the same time) and prints the top
entries by self time and by inclusive time.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg

from harness import BIN, Processes, Server, postgres_database, start_sink
from load import wrk
from run import QUICK, setup_database

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _backends(url: str) -> list[int]:
    """PostgreSQL backend pids connected to this run's database."""
    if url.startswith("sqlite"):
        return []
    name = url.rsplit("/", 1)[1]

    async def fetch() -> list[int]:
        conn = await asyncpg.connect(url.replace("postgresql://", "postgres://"))
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
            return [int(r["pid"]) for r in rows]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def _snapshot(pids: list[int]) -> dict[int, float]:
    return {pid: _cpu_seconds(pid) for pid in pids}


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


def measure_round(
    server: Server, base: str, url: str, env: dict[str, str], seconds: int
) -> tuple[int, float, float]:
    """(requests, server µs/request, database µs/request) of one wrk round."""
    workers = [server.proc.pid, *server.workers()]
    backends = _backends(url)
    server_before, db_before = _snapshot(workers), _snapshot(backends)
    result = wrk(base, seconds, env)
    server_after = _snapshot(workers)
    db_after = _snapshot(sorted(set(backends) | set(_backends(url))))
    requests = max(1, int(result["requests"]))
    return (
        requests,
        _spent(server_before, server_after) / requests * 1e6,
        _spent(db_before, db_after) / requests * 1e6,
    )


def top_entries(raw: Path, count: int = 15) -> str:
    """The top frames of py-spy's collapsed stacks, by self and inclusive samples."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack:
            continue
        n = int(samples)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{total} samples; self:"]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in own.most_common(count)]
    lines.append("inclusive:")
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(count * 2)]
    return "\n".join(lines)


def profile_worker(server: Server, base: str, env: dict[str, str], out: Path, seconds: int) -> str:
    """py-spy on the first worker while wrk drives the server; its top entries."""
    pid = server.workers()[0]
    argv = [str(BIN / "py-spy"), "record", "--pid", str(pid), "--duration", str(seconds)]
    argv += ["--rate", "200", "--format", "raw", "--output", str(out), "--nonblocking"]
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wrk(base, seconds, env)
    spy.wait(timeout=seconds + 30)
    return top_entries(out) if out.exists() else "(py-spy wrote nothing)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("postgresql", "sqlite"))
    parser.add_argument("--modes", default="add,validate")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--profile", type=Path, help="directory for py-spy's raw profiles")
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    databases = [args.only] if args.only else ["postgresql", "sqlite"]
    with tempfile.TemporaryDirectory(prefix="stampbook-cpu-") as tmp:
        procs = Processes(Path(tmp))
        try:
            sink = start_sink(procs)
            for database in databases:
                if database == "postgresql":
                    with postgres_database() as url:
                        try:
                            run_database(procs, database, url, sink, args)
                        finally:
                            procs.stop_all_but("webhook-sink")
                else:
                    run_database(procs, database, f"sqlite:///{Path(tmp) / 'cpu.db'}", sink, args)
                    procs.stop_all_but("webhook-sink")
        finally:
            procs.stop_all()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    return 0


def run_database(
    procs: Processes, database: str, url: str, sink: str, args: argparse.Namespace
) -> None:
    full, full_base, bare, bare_base, seeded = setup_database(procs, database, url, QUICK, sink)
    targets = [("stampbook", full, full_base), ("bare", bare, bare_base)]
    for mode in args.modes.split(","):
        env = {
            "BENCH_MODE": mode,
            "BENCH_KEY": seeded.key,
            "BENCH_FIRST": str(seeded.first),
            "BENCH_COUNT": str(seeded.count),
            "BENCH_HOT": str(seeded.hot),
            "BENCH_SEED": "1",
        }
        for _, _, base in targets:
            wrk(base, 2, {**env, "BENCH_RUN": f"warm-{mode}-{base}"})
        for round_no in range(args.rounds):
            order = targets if round_no % 2 == 0 else targets[::-1]
            for name, server, base in order:
                run_env = {**env, "BENCH_RUN": f"r{round_no}-{mode}-{name}-{os.getpid()}"}
                requests, server_us, db_us = measure_round(server, base, url, run_env, args.seconds)
                print(
                    f"{database:<10} {mode:<9} {name:<10} round {round_no}: {requests:6d} req "
                    f"({requests / args.seconds:6.0f}/s)  server {server_us:6.0f} µs/req"
                    + (f"  database {db_us:5.0f} µs/req" if database == "postgresql" else "")
                    + f"  load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            # Both servers, so that a profile of Stampbook reads against the
            # same frames of the least a server can do.
            for name, server, base in targets:
                out = args.profile / f"{database}-{mode}-{name}.raw"
                run_env = {**env, "BENCH_RUN": f"prof-{mode}-{name}-{os.getpid()}"}
                print(f"--- py-spy, one {name} worker, {database} {mode} ({out})")
                print(profile_worker(server, base, run_env, out, args.seconds * 2), flush=True)


if __name__ == "__main__":
    sys.exit(main())
