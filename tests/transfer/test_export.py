"""``stampbook export`` writes the files ``import`` reads: exported, then
imported into an empty database, every stamp comes back as it was."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from stampbook.stamps.views import render_stamp
from stampbook.transfer.formats import FIELDS
from tests.conftest import POSTGRES_ADMIN_URL
from tests.servers import scratch_database
from tests.transfer.conftest import Cli, ledger, stamp_row, write_jsonl


def test_the_file_fields_are_the_stamp_object_with_useYn_after_activeYn() -> None:
    row = SimpleNamespace(
        **{name: None for name in ("domain", "memo", "url", "stamp_img_url", "card_ttl")},
        stamp_idx=1, card_idx=1, card_nm="c", stamps=0, max_stamps=1, token="t",
        strt_ymd=date(2026, 1, 1), end_ymd=date(2026, 1, 2), onsite_yn="N", onsite_pwd=None,
        active_yn="Y", user_id="u", user_nm=None, user_phnno=None, user_eml=None,
        user_etc1=None, user_etc2=None, reg_ymdt=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    names = list(render_stamp(row, public_url="https://s.test", zone=ZoneInfo("UTC"), secrets=True))
    names.insert(names.index("activeYn") + 1, "useYn")
    assert tuple(names) == FIELDS


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_then_import_into_an_empty_database_reproduces_every_stamp(
    cli: Cli, base: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    account = cli.account()
    # Stamps of every origin: issued here, stamped here, and imported.
    card = cli.ok(
        "card", "create", "--account", account, "--name", "아메리카노 카드", "--max-stamps", "8",
        "--onsite-password", "4321", "--title", 'Buy 8, "one" free, today',
    ).split()[-1]  # fmt: skip
    issued = cli.ok("stamp", "create", "--account", account, "--card", card, "--user-id", "kim")
    cli.ok("stamp", "add", "--account", account, "--stamp", issued.split()[-1])
    cli.ok("stamp", "create", "--account", account, "--card", card)
    hosted = [
        stamp_row(base + 1, base + 1, memo="line one\nline two, with a comma", useYn="Y"),
        stamp_row(base + 2, base + 1, activeYn="N", userNm="김민지", domain=None, userEtc2="x"),
        stamp_row(base + 3, base + 2, cardNm="Tea", maxStamps=3, stamps=3, url=None, cardTtl=None),
    ]
    cli.ok("import", "--account", account, str(write_jsonl(tmp_path / "hosted.jsonl", hosted)))
    original = cli.export(account)
    assert len(original) == 5

    path = tmp_path / f"out.{fmt}"
    assert "5 stamps written" in cli.ok("export", "--account", account, "--output", str(path))
    # Into the same account, the file is what is already there.
    same = cli.ok("import", "--account", account, str(path))
    assert "0 new, 5 already here, 0 refused" in same
    kind = "sqlite" if cli.database_url.startswith("sqlite") else "postgresql"
    with scratch_database(kind, POSTGRES_ADMIN_URL) as empty_url:
        fresh = Cli(empty_url, monkeypatch)
        fresh.ok("apikey", "create", "--account", account)
        assert "5 new" in fresh.ok("import", "--account", account, str(path))
        assert fresh.export(account) == original
        for count, summed, _sources in ledger(empty_url, account).values():
            assert count == summed
        assert "0 new, 5 already here" in fresh.ok("import", "--account", account, str(path))


def test_export_writes_csv_or_jsonl_to_stdout_or_a_file(
    cli: Cli, base: int, tmp_path: Path
) -> None:
    account = cli.account()
    cli.ok("import", "--account", account, str(write_jsonl(tmp_path / "in.jsonl", [
        stamp_row(base + 1, base + 1), stamp_row(base + 2, base + 1),
    ])))  # fmt: skip
    csv_text = cli.ok("export", "--account", account, "--format", "csv")
    assert csv_text.splitlines()[0] == ",".join(FIELDS) and len(csv_text.splitlines()) == 3
    jsonl = cli.ok("export", "--account", account)
    assert jsonl.splitlines()[0].startswith(f'{{"stampIdx": {base + 2}, "domain": ')
    cli.ok("export", "--account", account, "--output", str(tmp_path / "out.csv"))
    assert (tmp_path / "out.csv").read_text() == csv_text

    bad = cli.run("export", "--account", account, "--format", "xml")
    assert bad.exit_code == 2 and "use csv or jsonl" in bad.stderr
    missing = cli.run("export", "--account", "nobody-here")
    assert missing.exit_code == 1 and "no account" in missing.stderr
