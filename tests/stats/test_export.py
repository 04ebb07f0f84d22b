"""GET /api/stamp/v1/export: CSV for spreadsheets (UTF-8 with BOM, no
formulas), streamed a chunk at a time, for a range of days."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from stampbook.stats import csv as stats_csv
from stampbook.stats import service
from tests.conftest import Api
from tests.stamps.conftest import LIST_FIELDS
from tests.stats.ledger import Ledger


def parse(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf"), body[:10]
    text = body[3:].decode("utf-8")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    return list(csv.reader(io.StringIO(text, newline="")))


async def export(api: Api, **params: Any) -> tuple[Any, list[list[str]]]:
    response = await api.call("GET", "export", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return response, parse(response.content)


async def test_stamps_csv_has_the_stamp_objects_fields_and_neutralises_formulas(
    api: Api, other_api: Api
) -> None:
    card = await api.card(cardNm="커피 카드")
    plain = await api.stamp(card, userNm="김민지", userPhnno="010-1234-5678")
    sneaky = await api.stamp(
        card, userNm="=HYPERLINK(\"http://x.test\",\"click\")", userPhnno="+82 10 1234",
        memo="-2+3", userEtc1="@SUM(A1)", userEtc2="a,b \"quoted\"",
    )  # fmt: skip
    await other_api.stamp()
    response, rows = await export(api, kind="stamps")
    today = api.today.isoformat()
    assert response.headers["content-disposition"].startswith('attachment; filename="stamps-')
    assert response.headers["content-disposition"].endswith(f'-{today}.csv"')
    header, *body = rows
    assert header == LIST_FIELDS
    assert [int(row[0]) for row in body] == [plain, sneaky]
    first = dict(zip(header, body[0], strict=True))
    assert (first["userNm"], first["userPhnno"], first["cardNm"]) == (
        "김민지", "010-1234-5678", "커피 카드"
    )  # fmt: skip
    second = dict(zip(header, body[1], strict=True))
    assert second["userNm"] == '\'=HYPERLINK("http://x.test","click")'
    assert second["userPhnno"] == "'+82 10 1234"
    assert second["memo"] == "'-2+3"
    assert second["userEtc1"] == "'@SUM(A1)"
    assert second["userEtc2"] == 'a,b "quoted"'
    assert "onsitePwd" not in header


async def test_events_csv_is_the_ledger_of_the_range_in_the_account_zone(
    database_url: str, api: Api
) -> None:
    ledger = Ledger(database_url, api.account_idx)
    await ledger.set_timezone("Asia/Seoul")
    card = await ledger.card(3)
    inside = await ledger.stamp(card, user_id="-1 cust", created=datetime(2026, 2, 28, 15, 0, 0),
                                max_stamps=3)  # fmt: skip
    await ledger.adds(inside, card, 0, datetime(2026, 3, 1, 14, 59, 59), datetime(2026, 3, 1, 15))
    await ledger.close()
    _, rows = await export(api, kind="events", **{"from": "2026-03-01", "to": "2026-03-01"})
    assert rows == [
        stats_csv.EVENT_HEADER,
        [rows[1][0], str(inside), str(card), "'-1 cust", "CREATE", "0", "0", "API",
         "2026-03-01 00:00:00"],
        [rows[2][0], str(inside), str(card), "'-1 cust", "ADD", "0", "1", "API",
         "2026-03-01 23:59:59"],
    ]  # fmt: skip
    assert int(rows[1][0]) < int(rows[2][0])


async def test_a_long_export_is_read_and_sent_in_chunks(
    database_url: str, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "EXPORT_CHUNK", 7)
    ledger = Ledger(database_url, api.account_idx)
    card = await ledger.card(100)
    now = api.clock.now().replace(tzinfo=None)
    stamp_idx = await ledger.stamp(card, user_id="u", created=now, max_stamps=100)
    await ledger.adds(stamp_idx, card, 0, *([now] * 29))
    await ledger.close()
    _, rows = await export(api, kind="events")
    assert len(rows) == 1 + 30
    assert [row[4] for row in rows[1:]] == ["CREATE"] + ["ADD"] * 29
    assert [row[6] for row in rows[1:]] == [str(n) for n in range(30)]  # stampsAfter
    assert len({row[0] for row in rows[1:]}) == 30


async def test_the_body_is_produced_as_rows_arrive() -> None:
    """The first bytes leave before the last row is read."""
    produced: list[int] = []

    async def rows() -> AsyncIterator[list[Any]]:
        for n in range(stats_csv.ROWS_PER_CHUNK * 2 + 1):
            produced.append(n)
            yield [n, "=1"]

    chunks = stats_csv.encode(["n", "text"], rows())
    first = await anext(chunks)
    assert first == b"\xef\xbb\xbfn,text\r\n" and produced == []
    second = await anext(chunks)
    assert len(produced) == stats_csv.ROWS_PER_CHUNK
    assert second.startswith(b"0,'=1\r\n1,'=1\r\n")
    rest = [chunk async for chunk in chunks]
    assert len(rest) == 2 and len(produced) == stats_csv.ROWS_PER_CHUNK * 2 + 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "cards"}, "kind"),
        ({}, "kind"),
        ({"kind": "stamps", "from": "2026-03-02", "to": "2026-03-01"}, "from"),
        ({"kind": "events", "to": "yesterday"}, "to"),
    ],
)
async def test_bad_parameters_are_400_naming_the_field(
    api: Api, params: dict[str, str], field: str
) -> None:
    response = await api.call("GET", "export", params=params)
    body = response.json()
    assert (response.status_code, body["code"]) == (400, 1001)
    assert field in body["message"]


async def test_export_needs_a_key(api: Api) -> None:
    response = await api.http.get("/api/stamp/v1/export", params={"kind": "stamps"})
    assert (response.status_code, response.json()["code"]) == (401, 1101)
