"""The Overview and Export pages: the owner and staff see the numbers the
stats API computes, as a chart and a table; only the owner exports, and the
CSV streams as the API's does. Signed out: the sign-in page."""

from __future__ import annotations

import csv
import io
import re

from tests.dashboard.conftest import BrowserFactory, Shop


async def _busy_day(shop: Shop) -> int:
    """A card, a customer with three stamps and one taken back; returns the stamp."""
    card_idx = await shop.api.card(cardNm="Latte club", maxStamps=5)
    stamp_idx = await shop.api.stamp(card_idx, userNm="=cmd|' /C calc'!A0", userId="guest-1")
    for _ in range(3):
        assert await shop.api.add(stamp_idx) == 0
    await shop.api.ok("PUT", "remove", json={"stampIdx": stamp_idx})
    return stamp_idx


def _cell(html: str, row_header: str) -> list[str]:
    """The cells of the table row headed ``row_header``."""
    found = re.search(rf'<th scope="row">{re.escape(row_header)}</th>(.*?)</tr>', html)
    assert found, row_header
    return re.findall(r"<td>([^<]*)</td>", found.group(1))


async def test_owner_and_staff_see_todays_numbers_as_chart_and_table(
    browser: BrowserFactory, shop: Shop
) -> None:
    await _busy_day(shop)
    today = shop.api.today.isoformat()
    for email in (shop.owner, shop.staff):
        async with browser(email) as b:
            response = await b.get("/dashboard/overview")
            assert response.status_code == 200
            html = response.text
            # added, issued, completed, redeemed, taken back
            assert _cell(html, today) == ["3", "1", "0", "0", "1"]
            assert html.count('<svg class="bars"') == 4  # added, issued, removed, progress
            assert 'aria-hidden="true" focusable="false"' in html
            assert _cell(html, "2") == ["1"]  # progress: one card holding 2 stamps
            assert "http://" not in html.replace("http://www.w3.org", "")
            assert "https://" not in html


async def test_the_range_and_card_filter_and_a_bad_range_falls_back(
    browser: BrowserFactory, shop: Shop
) -> None:
    await _busy_day(shop)
    other_card = await shop.api.card(cardNm="Tea")
    today = shop.api.today
    async with browser(shop.owner) as b:
        html = (await b.get(f"/dashboard/overview?from={today}&to={today}&card={other_card}")).text
        assert _cell(html, today.isoformat()) == ["0", "0", "0", "0", "0"]
        assert f'<option value="{other_card}" selected>Tea</option>' in html
        assert html.count('<th scope="row">') == 1  # one day; no progress on this card
        reversed_range = await b.get(f"/dashboard/overview?from={today}&to=2020-01-01")
        assert reversed_range.status_code == 200
        assert 'role="alert"' in reversed_range.text and "from" in reversed_range.text
        assert _cell(reversed_range.text, today.isoformat())[0] == "3"  # the default range


async def test_the_overview_speaks_korean(browser: BrowserFactory, shop: Shop) -> None:
    async with browser(shop.owner) as b:
        html = (await b.get("/dashboard/overview?lang=ko")).text
        assert '<html lang="ko">' in html and "적립한 스탬프" in html and "완성률" in html
        assert "내보내기" in html  # the owner's navigation offers Export


async def test_only_the_owner_exports(browser: BrowserFactory, shop: Shop) -> None:
    stamp_idx = await _busy_day(shop)
    today = shop.api.today.isoformat()
    async with browser(shop.staff) as b:
        for path in ("/dashboard/export", f"/dashboard/export/stamps.csv?from={today}&to={today}"):
            response = await b.get(path)
            assert response.status_code == 403, path
            assert "text/csv" not in response.headers["content-type"]
        assert "/dashboard/export" not in (await b.get("/dashboard/overview")).text
    async with browser() as signed_out:
        response = await signed_out.get("/dashboard/export/events.csv")
        assert response.status_code == 303 and "/dashboard/login" in response.headers["location"]
    async with browser(shop.owner) as b:
        page = await b.get("/dashboard/export")
        assert page.status_code == 200
        assert 'action="/dashboard/export/stamps.csv"' in page.text
        assert 'action="/dashboard/export/events.csv"' in page.text
        stamps = await b.get(f"/dashboard/export/stamps.csv?from={today}&to={today}")
        assert stamps.status_code == 200
        assert stamps.headers["content-type"] == "text/csv; charset=utf-8"
        assert stamps.headers["content-disposition"] == (
            f'attachment; filename="stamps-{today}-{today}.csv"'
        )
        assert stamps.content.startswith(b"\xef\xbb\xbf")
        rows = list(csv.DictReader(io.StringIO(stamps.content[3:].decode())))
        assert [(r["stampIdx"], r["userNm"]) for r in rows] == [
            (str(stamp_idx), "'=cmd|' /C calc'!A0")
        ]
        events = await b.get(f"/dashboard/export/events.csv?from={today}&to={today}")
        lines = list(csv.DictReader(io.StringIO(events.content[3:].decode())))
        assert [line["action"] for line in lines] == ["CREATE", "ADD", "ADD", "ADD", "REMOVE"]
        refused = await b.get("/dashboard/export/events.csv?from=2026-02-02&to=2026-02-01")
        assert refused.status_code == 400 and 'role="alert"' in refused.text
        assert (await b.get("/dashboard/export/cards.csv")).status_code == 404
