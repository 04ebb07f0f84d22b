"""``stampbook backup PATH``: a consistent copy of the live database.

SQLite is copied with the online backup API while the server goes on
writing; PostgreSQL is dumped with ``pg_dump --format=custom``. How to
restore either is in docs/deploy.md ("Backups").
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from stampbook.cli.shared import load_settings, redacted
from stampbook.db import backup as backups


def backup(
    path: Path = typer.Argument(..., help="The new file to write (never overwritten)."),
    pages: int = typer.Option(
        backups.DEFAULT_PAGES_PER_STEP,
        min=1,
        help="SQLite: pages copied per step (the progress bar moves once per step).",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Copy STAMPBOOK_DATABASE_URL to PATH while the server runs: SQLite with its
    online backup API, PostgreSQL with pg_dump --format=custom (restore with pg_restore)."""
    settings = load_settings()
    try:
        if settings.is_sqlite:
            source = backups.sqlite_file(settings.database_url)
            with Progress(
                TextColumn("backup"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("pages"),
                console=Console(stderr=True),  # stdout keeps the one result line
                disable=quiet,
                transient=True,
            ) as bar:
                task = bar.add_task("backup", total=None)

                def step(copied: int, total: int) -> None:
                    bar.update(task, completed=copied, total=total)

                copied = backups.backup_sqlite(source, path, pages_per_step=pages, progress=step)
            typer.echo(f"backed up {source} to {path} ({copied} pages, checked)")
        else:
            backups.backup_postgresql(settings.database_url, path)
            typer.echo(
                f"dumped {redacted(settings.database_url)} to {path} "
                "(pg_dump custom format; restore with pg_restore, see docs/deploy.md)"
            )
    except backups.BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
