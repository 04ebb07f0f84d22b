"""Private Redis and PostgreSQL servers for the tests that stop, freeze or restart one.

The machine's shared servers (127.0.0.1:6379 and :5432) are never touched:
each helper starts a server of its own on a free port of 127.0.0.1, in a
temporary directory, and always stops it and removes the directory when the
``with`` block ends, whether the test passed or not (a frozen server is
continued first, so that it can be stopped).

PostgreSQL's ``initdb`` refuses to run as root, so as root the cluster is
created and run as the ``postgres`` OS user (``runuser``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port

START_SECONDS = 30.0


def _children_of(pid: int) -> list[int]:
    """Every process whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = Path(stat).read_text()
            # The command name may contain spaces; the fields after ")" do not.
            parent = int(text.rpartition(")")[2].split()[1])
            if parent == pid:
                found.append(int(Path(stat).parent.name))
    return found


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


# -- Redis -----------------------------------------------------------------------------


@dataclass
class PrivateRedis:
    """A ``redis-server`` of the test's own: stop, freeze, continue, start again."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its URL, for ``STAMPBOOK_REDIS_URL``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or start again) on the same port, and wait until it answers."""
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            ping = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False
            )
            if ping.stdout.strip() == b"PONG":
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        """SIGTERM, and wait for it to exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def freeze(self) -> None:
        """SIGSTOP: connections stay open, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after ``freeze``."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    """A running ``redis-server --port <free>`` for the block; always stopped after."""
    with tempfile.TemporaryDirectory(prefix="stampbook-redis-") as directory:
        server = PrivateRedis(port=free_port(), directory=Path(directory))
        try:
            server.start()
            yield server
        finally:
            server.stop()


# -- PostgreSQL ------------------------------------------------------------------------


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed under /usr/lib/postgresql")
    return found[-1]


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of the test's own: restart, freeze, continue."""

    port: int
    directory: Path

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, database: str = "postgres") -> str:
        """A ``postgresql://`` URL for ``database`` on this cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            _postgres_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.directory / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            str(int(START_SECONDS)),
            action,
            *extra,
        )

    def init(self) -> None:
        """``initdb`` (trust authentication, user postgres) and start."""
        self._run(
            _postgres_bin("initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        )
        self._pg_ctl("start")

    def restart(self) -> None:
        """``pg_ctl restart`` (fast shutdown: every connection is cut)."""
        self._pg_ctl("restart", "-m", "fast")

    def _pids(self) -> list[int]:
        pid_file = self.data / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError):
            postmaster = int(pid_file.read_text().splitlines()[0])
            return [postmaster, *_children_of(postmaster)]
        return []

    def freeze(self) -> None:
        """SIGSTOP the postmaster and every backend: connections stay open, none answers."""
        _signal_all(self._pids(), signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after ``freeze``."""
        _signal_all(self._pids(), signal.SIGCONT)

    def stop(self) -> None:
        """Continue (if frozen) and stop immediately; never raises."""
        self.thaw()
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._pg_ctl("stop", "-m", "immediate")

    def log(self) -> str:
        """The server's own log."""
        with contextlib.suppress(OSError):
            return (self.directory / "server.log").read_text(errors="replace")
        return ""


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh PostgreSQL cluster on a free port for the block; always stopped and
    removed after."""
    directory = Path(tempfile.mkdtemp(prefix="stampbook-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, user="postgres", group="postgres")
    cluster = PrivatePostgres(port=free_port(), directory=directory)
    try:
        cluster.init()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)
