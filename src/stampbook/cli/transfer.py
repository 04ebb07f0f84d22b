"""``stampbook import`` and ``stampbook export``: an account's stamps from and
to CSV or JSON Lines (the rules are in ``stampbook.transfer``)."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from stampbook.cli.shared import account_context, run_with_database
from stampbook.config import Settings
from stampbook.kit.db import Database
from stampbook.transfer import export, service
from stampbook.transfer.formats import FORMATS, Format, RowWriter, guess_format, read_lines

FormatOption = Annotated[
    str | None, typer.Option("--format", help="csv or jsonl (default: from the file's name)")
]


def _format(value: str | None, default: Format) -> Format:
    if value is None:
        return default
    for known in FORMATS:
        if value == known:
            return known
    raise typer.BadParameter(f"{value!r}: use csv or jsonl", param_hint="--format")


def import_file(
    account: Annotated[str, typer.Option(help="The account to import into.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    fmt: FormatOption = None,
    dry_run: Annotated[bool, typer.Option(help="Report what would happen; write nothing.")] = False,
    skip_bad: Annotated[
        bool, typer.Option(help="Import the good rows of a file with bad ones.")
    ] = False,
    reset_domain: Annotated[
        bool,
        typer.Option(help="Drop the rows' domain: their pages follow STAMPBOOK_PUBLIC_URL."),
    ] = False,
) -> None:
    """Import stamps (CSV or JSON Lines of stamp objects), keeping their stampIdx.

    All or nothing unless --skip-bad; running the same file again changes nothing.
    """
    with file.open("rb") as raw:
        chosen = _format(fmt, guess_format(file, raw.read(64)))
        raw.seek(0)
        options = service.ImportOptions(
            dry_run=dry_run, skip_bad=skip_bad, reset_domain=reset_domain
        )
        report = _run_import(account, raw, chosen, options, file.stat().st_size)
    _print_report(report, options)
    if report.rejected and not skip_bad:
        raise typer.Exit(1)


def _run_import(
    account: str, raw: BinaryIO, fmt: Format, options: service.ImportOptions, size: int
) -> service.ImportReport:
    # The bar follows the bytes read; it shows only on a terminal (stderr).
    columns = (
        TextColumn("importing"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    )
    console = Console(stderr=True)
    shown = console.is_terminal
    with Progress(*columns, console=console, transient=True, disable=not shown) as bar:
        task = bar.add_task("import", total=size)

        async def work(db: Database, settings: Settings) -> service.ImportReport:
            async with db.read() as conn:
                ctx = await account_context(conn, settings, account)
            lines = read_lines(raw, fmt)
            try:
                return await service.import_stamps(
                    db, ctx, lines, options, lambda _rows: bar.update(task, completed=raw.tell())
                )
            except service.ImportConflict as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(1) from exc

        return run_with_database(work)


def _print_report(report: service.ImportReport, options: service.ImportOptions) -> None:
    for rejection in report.rejected:
        typer.echo(f"line {rejection.line}: {rejection.reason}", err=True)
    differing = (
        f" ({report.differing} of them differ from the file and were left as they are)"
        if report.differing
        else ""
    )
    typer.echo(
        f"{report.rows} rows: {report.created} new, {report.present} already here{differing},"
        f" {len(report.rejected)} refused"
    )
    for card_idx, name in report.cards_created:
        typer.echo(f"card {card_idx} created: {name}")
    if report.highest_stamp_idx:
        typer.echo(f"new stamps are numbered after {report.highest_stamp_idx}")
    if options.dry_run:
        typer.echo("dry run: nothing was written")
    elif report.committed:
        typer.echo("imported")
    else:
        typer.echo("nothing was written: fix the refused rows, or use --skip-bad")


def export_file(
    account: Annotated[str, typer.Option(help="The account to export.")],
    fmt: FormatOption = None,
    output: Annotated[
        Path | None, typer.Option(help="Write here instead of stdout.", dir_okay=False)
    ] = None,
) -> None:
    """Write every stamp of an account as CSV or JSON Lines (what import reads)."""
    # JSON Lines unless told otherwise: it keeps null apart from "" and numbers apart from text.
    chosen = _format(fmt, "csv" if output and output.suffix.lower() == ".csv" else "jsonl")

    async def work(db: Database, settings: Settings) -> int:
        async with db.read() as conn:
            ctx = await account_context(conn, settings, account)
        opened = output.open("w", encoding="utf-8", newline="") if output else None
        with opened or nullcontext(sys.stdout) as out:
            writer = RowWriter(out, chosen)
            async for row in export.export_stamps(db, ctx):
                writer.write(row)
            return writer.count

    count = run_with_database(work)
    if output is not None:
        typer.echo(f"{count} stamps written to {output}")
