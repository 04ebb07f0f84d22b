"""Core statements compiled once and run on the driver's own connection.

The hot paths (an add, a validate, the API-key lookup) are a few statements
each, and SQLAlchemy's execution machinery around a statement (cache key,
parameter processing, result adaptation, the greenlet hop of its async
layer) cost three to four times what asyncpg or sqlite3 spend running it
(bench/README.md). A ``DriverStatement`` keeps the SQL where docs/architecture.md wants
it, in SQLAlchemy Core, but compiles it once per dialect and hands the
string and the positional values straight to the driver, converting values
with the column types' own bind and result processors (SQLite stores dates
as text; asyncpg needs no conversion).

The connection comes from ``Database.driver()``: an asyncpg connection on
PostgreSQL, the inline ``sqlite3`` connection on SQLite.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.dialects.sqlite import pysqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

Processor = Callable[[Any], Any] | None

_DIALECTS: dict[str, Dialect] = {
    "postgresql": postgresql_asyncpg.dialect(),  # type: ignore[no-untyped-call]
    "sqlite": pysqlite.dialect(),
}


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    # (name, default value, bind processor) per positional parameter.
    slots: tuple[tuple[str, Any, Processor], ...]
    row_type: type[tuple[Any, ...]] | None
    result_processors: tuple[Processor, ...]
    processes_results: bool

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        out = []
        for name, default, process in self.slots:
            value = values.get(name, default)
            out.append(process(value) if process is not None and value is not None else value)
        return out

    def row(self, record: Sequence[Any]) -> Any:
        assert self.row_type is not None
        if not self.processes_results:
            return self.row_type._make(record)  # type: ignore[attr-defined]
        return self.row_type._make(  # type: ignore[attr-defined]
            process(value) if process is not None else value
            for value, process in zip(record, self.result_processors, strict=True)
        )


class DriverStatement:
    """One Core statement (SELECT, DML with RETURNING, or typed ``text()``),
    compiled lazily for each dialect it runs on.

    Rows come back as named tuples with the statement's column labels, so the
    code that reads SQLAlchemy rows by attribute reads these unchanged.
    """

    def __init__(self, statement: ClauseElement, *, name: str = "Row") -> None:
        self.statement = statement
        self.name = name
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect_name: str) -> _Compiled:
        """The statement compiled for ``postgresql`` or ``sqlite`` (memoised)."""
        found = self._compiled.get(dialect_name)
        if found is None:
            found = self._compiled[dialect_name] = self._compile(_DIALECTS[dialect_name])
        return found

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler) and compiled.positiontup is not None
        slots = tuple(
            (
                name,
                compiled.binds[name].value,
                compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect),
            )
            for name in compiled.positiontup
        )
        columns = list(getattr(self.statement, "exported_columns", ()))
        row_type: Any = None
        processors: tuple[Processor, ...] = ()
        if columns:
            row_type = namedtuple(self.name, [column.name for column in columns])  # type: ignore[misc,no-redef]
            processors = tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in columns
            )
        return _Compiled(compiled.string, slots, row_type, processors, any(processors))

    async def first(self, conn: Any, values: Mapping[str, Any]) -> Any | None:
        """The first row, or None."""
        if isinstance(conn, sqlite3.Connection):
            compiled = self.compiled("sqlite")
            # fetchall: a RETURNING statement left unfinished would hold the commit.
            records = conn.execute(compiled.sql, compiled.args(values)).fetchall()
            record = records[0] if records else None
        else:
            compiled = self.compiled("postgresql")
            record = await conn.fetchrow(compiled.sql, *compiled.args(values))
        return None if record is None else compiled.row(record)

    async def run(self, conn: Any, values: Mapping[str, Any]) -> None:
        """Run the statement for its effect."""
        if isinstance(conn, sqlite3.Connection):
            compiled = self.compiled("sqlite")
            conn.execute(compiled.sql, compiled.args(values))
        else:
            compiled = self.compiled("postgresql")
            await conn.execute(compiled.sql, *compiled.args(values))
