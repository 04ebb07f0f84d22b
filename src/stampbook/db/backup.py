"""Consistent copies of a live database: SQLite's online backup API, PostgreSQL's pg_dump.

SQLite: the copy is made by ``sqlite3.Connection.backup`` in steps of a few
pages (so a large file reports progress), while the source connection holds
one read transaction from the first step to the last. In WAL mode a reader
blocks no writer, so the server goes on writing throughout, and the copy is
the database exactly as it was when the backup started: SQLite restarts a
backup whose source changed between steps, but a source read transaction
never sees a later commit, so the backup neither restarts (which could go
on for ever under steady writes) nor mixes two states.

The copy is written beside ``target`` under a temporary name and renamed
only once it is whole and ``PRAGMA quick_check`` finds it sound, so a failed
or interrupted backup never leaves a partial file under the name asked for.

PostgreSQL: ``pg_dump --format=custom`` (restore with ``pg_restore``), one
repeatable-read snapshot, the tool PostgreSQL's own documentation prescribes;
credentials travel in the environment, never on a command line that ``ps``
shows.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from sqlalchemy.engine import make_url

DEFAULT_PAGES_PER_STEP = 1024
# Called after each step with (pages copied, pages in all).
Progress = Callable[[int, int], None]


class BackupError(Exception):
    """The backup could not be made; the message says why, for the operator."""


def sqlite_file(database_url: str) -> Path:
    """The file of an ``sqlite:///`` URL (relative paths against the working directory)."""
    name = make_url(database_url).database
    if not name or name == ":memory:":
        raise BackupError(f"not an SQLite file: {database_url}")
    return Path(name)


def backup_sqlite(
    source: Path,
    target: Path,
    *,
    pages_per_step: int = DEFAULT_PAGES_PER_STEP,
    progress: Progress | None = None,
) -> int:
    """Copy the live SQLite database ``source`` to ``target`` (which must not exist);
    returns the number of pages copied."""
    if not source.is_file():
        raise BackupError(f"no database file at {source}")
    if target.exists():
        raise BackupError(f"{target} exists; choose a new name (a backup never overwrites)")
    partial = target.with_name(f".{target.name}.partial")
    _remove_sqlite_files(partial)
    copied = 0

    def on_step(_status: int, remaining: int, total: int) -> None:
        nonlocal copied
        copied = total - remaining
        if progress is not None:
            progress(copied, total)

    try:
        # Autocommit: the read transaction opened below is the only one (this
        # connection never writes).
        with closing(sqlite3.connect(source, isolation_level=None)) as live:
            live.execute("PRAGMA busy_timeout = 5000")
            live.execute("BEGIN")
            # A statement starts the read transaction (BEGIN alone defers it):
            # from here on every step reads this one snapshot.
            live.execute("SELECT count(*) FROM sqlite_master").fetchone()
            with closing(sqlite3.connect(partial)) as copy:
                live.backup(copy, pages=pages_per_step, progress=on_step)
                verdict = copy.execute("PRAGMA quick_check").fetchone()[0]
            live.execute("COMMIT")
        if verdict != "ok":
            raise BackupError(f"the copy failed its check: {verdict}")
        partial.rename(target)
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite refused the backup: {exc}") from exc
    finally:
        _remove_sqlite_files(partial)
    return copied


def _remove_sqlite_files(path: Path) -> None:
    """Remove ``path`` and the journal files SQLite may have left beside it."""
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        name.unlink(missing_ok=True)


def pg_dump_environment(database_url: str) -> dict[str, str]:
    """libpq's environment for ``database_url`` (PGHOST, PGUSER, PGPASSWORD, …)."""
    url = make_url(database_url)
    if not url.drivername.startswith("postgres"):
        raise BackupError(f"not a PostgreSQL URL: {url.drivername}")
    values = {
        "PGHOST": url.host,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password,
        "PGDATABASE": url.database,
        # libpq's name, or asyncpg's (?ssl=require), which the server's URL may use.
        "PGSSLMODE": url.query.get("sslmode") or url.query.get("ssl"),
    }
    return {name: str(value) for name, value in values.items() if value}


def backup_postgresql(database_url: str, target: Path) -> None:
    """Dump ``database_url`` with ``pg_dump --format=custom`` into ``target``
    (which must not exist); restore it with ``pg_restore``."""
    if target.exists():
        raise BackupError(f"{target} exists; choose a new name (a backup never overwrites)")
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError(
            "pg_dump is not installed: install PostgreSQL's client tools "
            "(Debian: apt-get install postgresql-client) of the server's major version"
        )
    partial = target.with_name(f".{target.name}.partial")
    env = {**os.environ, **pg_dump_environment(database_url)}
    try:
        done = subprocess.run(
            [pg_dump, "--format=custom", "--no-password", f"--file={partial}"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)
