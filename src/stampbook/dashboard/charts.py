"""Bar charts drawn on the server as inline SVG: no script, no external
request. A chart is only a picture of numbers the page also shows as a
table (the table is what screen readers read; the SVG is hidden from them).

The SVG's coordinates are its data's: one unit of width per bar, the
tallest bar ``HEIGHT`` high; CSS stretches it to the page's width. Labels
are HTML beside it, so they stay readable at any width.
"""

from __future__ import annotations

from dataclasses import dataclass

HEIGHT = 100
GAP = 0.2  # of each bar's unit of width, left empty between bars


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: where it stands in the SVG and what it shows."""

    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


@dataclass(frozen=True, slots=True)
class Chart:
    """A bar chart: its bars, the SVG's size and the scale's top."""

    bars: list[Bar]
    width: int
    height: int
    top: int

    @property
    def first_label(self) -> str:
        """The first bar's label ('' without bars)."""
        return self.bars[0].label if self.bars else ""

    @property
    def last_label(self) -> str:
        """The last bar's label ('' without bars)."""
        return self.bars[-1].label if self.bars else ""


def bars(points: list[tuple[str, int]]) -> Chart:
    """A chart of ``(label, value)`` points, in order; values are never negative.
    A value above zero always shows at least a sliver, so a quiet day with
    one stamp is told apart from a day with none."""
    top = max((value for _, value in points), default=0)
    drawn = []
    for n, (label, value) in enumerate(points):
        height = 0.0 if top == 0 else max(value / top * HEIGHT, 1.5 if value else 0.0)
        drawn.append(Bar(n + GAP / 2, HEIGHT - height, 1 - GAP, height, label, value))
    return Chart(drawn, max(len(points), 1), HEIGHT, top)
