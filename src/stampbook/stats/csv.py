"""CSV for spreadsheets: UTF-8 with a byte-order mark (so Excel opens Korean
correctly), CRLF rows, and no formulas.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage
return, which some spreadsheets skip before looking) would be run as a
formula when the file is opened: such a text cell is prefixed with ``'``,
as OWASP's CSV-injection advice says. Numbers are written as they are.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from stampbook.stamps.views import RENDERED_COLUMNS, render_stamp

BOM = "\ufeff".encode()
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 200


def _header_of_stamp_object() -> list[str]:
    # The stamp object's own field names, in its order, from the one renderer
    # (render a placeholder row rather than writing the list a second time).
    placeholder: dict[str, Any] = dict.fromkeys(RENDERED_COLUMNS, None)
    placeholder.update(
        strt_ymd=date(2000, 1, 1), end_ymd=date(2000, 1, 1), reg_ymdt=datetime(2000, 1, 1)
    )
    row = SimpleNamespace(**placeholder)
    return list(render_stamp(row, public_url="", zone=ZoneInfo("UTC")))


# The stamps export: the stamp object's fields (list's: validate's without
# the card's on-site password, which is the staff's secret, not customer data).
STAMP_HEADER = _header_of_stamp_object()
EVENT_HEADER = [
    "eventIdx",
    "stampIdx",
    "cardIdx",
    "userId",
    "action",
    "stampsBefore",
    "stampsAfter",
    "source",
    "regYmdt",
]


def neutralise(cell: Any) -> Any:
    """The cell, with a leading ``'`` when it is text a spreadsheet would run."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return "" if cell is None else cell


def lines(rows: Iterable[Sequence[Any]]) -> str:
    """Rows as CSV text (CRLF line ends, quoted only where needed), neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
    return buffer.getvalue()


async def encode(header: Sequence[str], rows: AsyncIterator[Sequence[Any]]) -> AsyncIterator[bytes]:
    """The whole file as byte chunks: the BOM and header first, then about
    ``ROWS_PER_CHUNK`` rows at a time as they arrive."""
    yield BOM + lines([header]).encode()
    pending: list[Sequence[Any]] = []
    async for row in rows:
        pending.append(row)
        if len(pending) >= ROWS_PER_CHUNK:
            yield lines(pending).encode()
            pending = []
    if pending:
        yield lines(pending).encode()
