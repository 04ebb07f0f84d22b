"""``stampbook db upgrade|current``: the Alembic migrations."""

from __future__ import annotations

import typer

from stampbook.cli.shared import ensure_sqlite_dir, load_settings, redacted
from stampbook.db import migrate

app = typer.Typer(help="Database migrations.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Run the Alembic migrations to head on STAMPBOOK_DATABASE_URL."""
    settings = load_settings()
    ensure_sqlite_dir(settings)
    migrate.upgrade(settings.database_url, revision)
    typer.echo(f"database at {revision}: {redacted(settings.database_url)}")


@app.command("current")
def db_current() -> None:
    """Print the database's migration revision."""
    migrate.current(load_settings().database_url)
