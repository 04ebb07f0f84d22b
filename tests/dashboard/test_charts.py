"""The overview's bar charts (dashboard/charts.py): one unit of width per
bar, the tallest bar the full height, a non-zero value never invisible."""

from __future__ import annotations

from stampbook.dashboard import charts


def test_bars_are_scaled_to_the_tallest_and_placed_in_order() -> None:
    chart = charts.bars([("a", 0), ("b", 50), ("c", 100), ("d", 1000)])
    assert (chart.width, chart.height, chart.top) == (4, charts.HEIGHT, 1000)
    assert [bar.x for bar in chart.bars] == [0.1, 1.1, 2.1, 3.1]
    assert [round(bar.height, 3) for bar in chart.bars] == [0.0, 5.0, 10.0, 100.0]
    assert all(round(bar.y + bar.height, 9) == charts.HEIGHT for bar in chart.bars)
    assert (chart.first_label, chart.last_label) == ("a", "d")


def test_a_small_value_still_shows_and_an_empty_chart_is_flat() -> None:
    tiny = charts.bars([("a", 1), ("b", 10_000)])
    assert tiny.bars[0].height == 1.5
    empty = charts.bars([("a", 0), ("b", 0)])
    assert empty.top == 0 and all(bar.height == 0 for bar in empty.bars)
    nothing = charts.bars([])
    assert (nothing.width, nothing.first_label, nothing.last_label) == (1, "", "")
