"""The two file formats of ``stampbook import`` and ``export``: CSV (a header
row of field names) and JSON Lines (one stamp object per line), both in the
stamp object's wire names (``FIELDS``).

Reading yields one ``SourceLine`` per record, numbered by the line of the
file it starts on, so that every refusal can name its line; a record that
cannot even be read (broken JSON, a short CSV row) carries its problem
instead of its fields. Values keep the file's own types: JSON's numbers stay
numbers; CSV's text is converted for the integer fields by the same strict
reading as every other integer the server accepts as text
(``kit.params.strict_decimal``), and an empty CSV cell is an absent field.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal, TextIO

from stampbook.kit.params import strict_decimal

Format = Literal["csv", "jsonl"]
FORMATS: tuple[Format, ...] = ("csv", "jsonl")

# The stamp object (validate's result, ``stamps.views.render_stamp``) with
# ``useYn`` after ``activeYn``: the wire object has no field for a redeemed
# reward, and a migration must keep it. A test checks this against the renderer.
FIELDS = (
    "stampIdx",
    "domain",
    "cardIdx",
    "cardNm",
    "cardTtl",
    "stamps",
    "maxStamps",
    "stampUrl",
    "url",
    "strtYmd",
    "endYmd",
    "onsiteYn",
    "onsitePwd",
    "memo",
    "activeYn",
    "useYn",
    "userId",
    "userNm",
    "userPhnno",
    "userEml",
    "userEtc1",
    "userEtc2",
    "stampImgUrl",
    "regYmdt",
    "payloadVersion",
)
INTEGER_FIELDS = frozenset({"stampIdx", "cardIdx", "stamps", "maxStamps"})


@dataclass(slots=True)
class SourceLine:
    """One record of the file: where it starts, and its fields or why it could not be read."""

    line: int
    fields: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None


def guess_format(path: Path, first_bytes: bytes) -> Format:
    """``csv`` or ``jsonl`` from the file's suffix, else from its first character."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return "jsonl"
    return "jsonl" if first_bytes.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") else "csv"


def read_lines(stream: BinaryIO, fmt: Format) -> Iterator[SourceLine]:
    """The records of ``stream`` (UTF-8, with or without a byte-order mark)."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        yield from _read_csv(text) if fmt == "csv" else _read_jsonl(text)
    except UnicodeDecodeError as exc:
        yield SourceLine(line=0, problem=f"the file is not UTF-8 text ({exc.reason})")
    finally:
        text.detach()


def _read_jsonl(text: TextIO) -> Iterator[SourceLine]:
    for number, raw in enumerate(text, start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError as exc:
            yield SourceLine(line=number, problem=f"not valid JSON ({exc})")
            continue
        if not isinstance(value, dict):
            yield SourceLine(line=number, problem="not a JSON object")
            continue
        yield SourceLine(line=number, fields=value)


def _read_csv(text: TextIO) -> Iterator[SourceLine]:
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield SourceLine(line=1, problem=f"unreadable CSV header ({exc})")
        return
    names = [name.strip() for name in header]
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield SourceLine(line=start, problem=f"unreadable CSV ({exc})")
            return
        line, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(names):
            problem = f"{len(cells)} cells where the header has {len(names)}"
            yield SourceLine(line=line, problem=problem)
            continue
        yield _csv_record(line, names, cells)


def _csv_record(line: int, names: list[str], cells: list[str]) -> SourceLine:
    fields: dict[str, Any] = {}
    for name, cell in zip(names, cells, strict=True):
        if cell == "":
            continue  # an empty cell is an absent field
        if name in INTEGER_FIELDS:
            try:
                fields[name] = strict_decimal(cell.strip())
            except ValueError as exc:
                return SourceLine(line=line, problem=f"{name}: {exc}")
        else:
            fields[name] = cell
    return SourceLine(line=line, fields=fields)


class RowWriter:
    """Writes stamp objects (with ``FIELDS``) to ``out`` one at a time; a CSV
    file starts with its header."""

    def __init__(self, out: TextIO, fmt: Format) -> None:
        self.out = out
        self.fmt = fmt
        self.count = 0
        self._csv = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow(FIELDS)

    def write(self, row: dict[str, Any]) -> None:
        """One more stamp: a CSV row (an empty cell for null) or a JSON line."""
        if self._csv is not None:
            self._csv.writerow(["" if row[name] is None else row[name] for name in FIELDS])
        else:
            line = json.dumps({name: row[name] for name in FIELDS}, ensure_ascii=False)
            self.out.write(line + "\n")
        self.count += 1
