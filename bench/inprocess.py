"""The app's own CPU per request, without the network: the ASGI app called
directly, one request after another, in this process.

``bench/run.py`` measures what a user gets (uvicorn, sockets, wrk, 32
connections on the same two cores), where a few microseconds of the app's own
work drown in noise. This measures only what the app adds, quietly enough to
compare two revisions or two ideas: a round of ``--requests`` calls,
``--rounds`` times, and the fastest round's CPU time per request (the
slower ones met other processes).

    .venv/bin/python bench/inprocess.py                         # SQLite, validate and add
    .venv/bin/python bench/inprocess.py --server bare           # the baseline (bench/bare_app.py)
    .venv/bin/python bench/inprocess.py --database postgresql://postgres@127.0.0.1:5432/x
    .venv/bin/python bench/inprocess.py --profile /tmp/inproc   # cProfile of one round per verb
    PYTHONPATH=/path/to/old/checkout/src .venv/bin/python bench/inprocess.py   # another revision

The database (a temporary SQLite file by default, or an empty database
named by ``--database``) is migrated with ``stampbook db upgrade`` and given a
key, one card (``maxStamps`` 100) and 2,000 stamps through the API itself, so
that any revision of the wire-compatible API can be measured the same way.
The app is ``stampbook.app:serve_app`` with the shipped defaults (access log
to stderr, which this redirects to a file; rate limit far above the load);
the dispatcher is off, as nothing here delivers.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
STAMPS = 2000
WARMUP = 300
Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def call(
    app: Asgi,
    method: str,
    path: str,
    *,
    query: str = "",
    body: Any = None,
    headers: list[tuple[bytes, bytes]],
) -> tuple[int, bytes]:
    """One request through the ASGI app: its status and body."""
    raw = json.dumps(body).encode() if body is not None else b""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await asyncio.sleep(3600)  # the client never disconnects
        return {"type": "http.disconnect"}

    status, chunks = 0, []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    extra = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers + (extra if body is not None else []),
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    await app(scope, receive, send)
    return status, b"".join(chunks)


def prepare(database_url: str) -> tuple[str, dict[str, str]]:
    """Migrate and key the database; the key and the server's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAMPBOOK_")}
    env.update(
        STAMPBOOK_DATABASE_URL=database_url,
        STAMPBOOK_PUBLIC_URL="http://127.0.0.1:8000",
        STAMPBOOK_RATE_LIMIT="10000000/minute",
        STAMPBOOK_DISPATCHER_ENABLED="false",
    )
    for args in (["db", "upgrade"], ["apikey", "create", "--account", "inprocess"]):
        done = subprocess.run(
            [str(BIN / "stampbook"), *args], env=env, capture_output=True, text=True, check=True
        )
    return done.stdout.strip().splitlines()[-1], env


async def seed(app: Asgi, headers: list[tuple[bytes, bytes]]) -> int:
    """One card and the stamps, through the API; the first stamp's idx."""
    _, body = await call(
        app,
        "POST",
        "/api/stamp/v1/card/create",
        headers=headers,
        body={"cardNm": "In process", "maxStamps": 100},
    )
    card = json.loads(body)["result"]
    today = time.strftime("%Y-%m-%d")
    first = 0
    for _ in range(STAMPS):
        _, body = await call(
            app,
            "POST",
            "/api/stamp/v1/create",
            headers=headers,
            body={"cardIdx": card, "strtYmd": today, "endYmd": today},
        )
        first = first or json.loads(body)["result"]
    return int(first)


async def measure(args: argparse.Namespace, database_url: str) -> None:
    key, env = prepare(database_url)
    os.environ.update(env)
    headers = [(b"authorization", f"APIKey {key}".encode()), (b"host", b"127.0.0.1:8000")]
    from stampbook.app import serve_app  # after the environment is set

    app: Asgi = serve_app()
    async with app.router.lifespan_context(app):  # type: ignore[attr-defined]
        first = await seed(app, headers)
        target = app
        if args.server == "bare":
            os.environ.update(
                BARE_DATABASE_URL=database_url.replace("postgresql://", "postgres://"),
                BARE_ACCOUNT_IDX="1",
                BARE_PUBLIC_URL="http://127.0.0.1:8000",
            )
            sys.path.insert(0, str(BENCH))
            import bare_app

            target = bare_app.app
        async with target.router.lifespan_context(target):  # type: ignore[attr-defined]
            for verb in args.verbs.split(","):
                await measure_verb(args, target, verb, first, headers)


async def measure_verb(
    args: argparse.Namespace, app: Asgi, verb: str, first: int, headers: list[tuple[bytes, bytes]]
) -> None:
    chooser = random.Random(1)

    async def one() -> None:
        stamp_idx = first + chooser.randrange(STAMPS)
        if verb == "validate":
            status, body = await call(
                app, "GET", "/api/stamp/v1/validate", query=f"stampIdx={stamp_idx}", headers=headers
            )
        else:
            keyed = [*headers, (b"idempotency-key", uuid.uuid4().hex.encode())]
            status, body = await call(
                app, "PUT", "/api/stamp/v1/add", headers=keyed, body={"stampIdx": stamp_idx}
            )
        if status != 200:
            raise RuntimeError(f"{verb}: HTTP {status} {body!r}")

    for _ in range(WARMUP):
        await one()
    rounds: list[tuple[float, float]] = []
    for round_no in range(args.rounds):
        profiler = cProfile.Profile() if args.profile and round_no == 0 else None
        wall, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        for _ in range(args.requests):
            await one()
        if profiler:
            profiler.disable()
            args.profile.mkdir(parents=True, exist_ok=True)
            profiler.dump_stats(args.profile / f"{args.server}-{verb}.prof")
            continue  # a profiled round is slower: not measured
        rounds.append(
            (
                (time.process_time() - cpu) * 1e6 / args.requests,
                (time.perf_counter() - wall) * 1e6 / args.requests,
            )
        )
    rounds.sort()
    cpu_list = ", ".join(f"{c:.0f}" for c, _ in rounds)
    print(
        f"{args.server:<9} {verb:<9} CPU µs/request: fastest {rounds[0][0]:.0f}, "
        f"median {rounds[len(rounds) // 2][0]:.0f} (every round: {cpu_list}); "
        f"wall fastest {min(w for _, w in rounds):.0f}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=("stampbook", "bare"), default="stampbook")
    parser.add_argument("--verbs", default="validate,add")
    parser.add_argument("--database", help="an empty database's URL (default: a temporary SQLite)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", type=Path, help="directory for a cProfile of each verb")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stampbook-inprocess-") as tmp:
        url = args.database or f"sqlite:///{Path(tmp) / 'inprocess.db'}"
        with open(Path(tmp) / "server.log", "w") as log:  # the access lines
            sys.stderr = log
            try:
                asyncio.run(measure(args, url))
            finally:
                sys.stderr = sys.__stderr__
    return 0


if __name__ == "__main__":
    sys.exit(main())
