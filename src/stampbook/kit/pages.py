"""Cursor pages: ``{"items": [...], "nextCursor": ...}``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from stampbook.kit.params import encode_cursor

RowT = TypeVar("RowT")


def page(
    rows: Sequence[RowT],
    *,
    limit: int,
    render: Callable[[RowT], dict[str, Any]],
    idx_of: Callable[[RowT], int],
) -> dict[str, Any]:
    """Render up to ``limit`` rows; a row beyond them means another page follows."""
    shown = rows[:limit]
    next_cursor = encode_cursor(idx_of(shown[-1])) if len(rows) > limit and shown else None
    return {"items": [render(row) for row in shown], "nextCursor": next_cursor}
