"""``stampbook import``: a migration from the hosted service keeps every
stampIdx, count, flag, date and user field, creates the cards it needs, and
is safe to run again; a bad file writes nothing unless told to skip."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from click.testing import Result

from tests.conftest import POSTGRES_ADMIN_URL
from tests.servers import scratch_database
from tests.transfer.conftest import PUBLIC_URL, Cli, ledger, stamp_row, write_jsonl


def test_an_import_keeps_the_hosted_numbers_and_new_stamps_follow_them(
    cli: Cli, base: int, tmp_path: Path
) -> None:
    account = cli.account()
    rows = [
        stamp_row(base + 274, base + 1, stamps=10, memo="regular", userEtc1="vip"),
        stamp_row(base + 9, base + 1, stamps=0, useYn="Y", activeYn="N", regYmdt=None),
        # Another card, named only: created once, for both rows.
        stamp_row(base + 12, base + 2, cardNm="Latte card", maxStamps=6, stamps=6),
        stamp_row(base + 13, base + 2, cardNm="Latte card", maxStamps=6, userId=None),
    ]
    out = cli.ok("import", "--account", account, str(write_jsonl(tmp_path / "in.jsonl", rows)))
    assert "4 new, 0 already here, 0 refused" in out and "imported" in out
    assert f"card {base + 1} created: Accumulate 10 Americanos" in out
    assert f"card {base + 2} created: Latte card" in out

    exported = {item["stampIdx"]: item for item in cli.export(account)}
    assert sorted(exported) == [base + 9, base + 12, base + 13, base + 274]
    first = exported[base + 274]
    for name in ("cardIdx", "cardNm", "cardTtl", "stamps", "maxStamps", "url", "strtYmd"):
        assert first[name] == rows[0][name], name
    for name in ("endYmd", "onsiteYn", "onsitePwd", "memo", "activeYn", "userId", "userNm"):
        assert first[name] == rows[0][name], name
    for name in ("userPhnno", "userEml", "userEtc1", "userEtc2", "stampImgUrl", "regYmdt"):
        assert first[name] == rows[0][name], name
    # The hosted page address is not ours: the customer gets a Stampbook page
    # on the stamp's own domain.
    assert first["useYn"] == "N" and first["stampUrl"].startswith("https://hosted.example.com/s/")
    assert (exported[base + 9]["useYn"], exported[base + 9]["activeYn"]) == ("Y", "N")
    assert exported[base + 12]["cardIdx"] == exported[base + 13]["cardIdx"] == base + 2
    assert len(exported[base + 13]["userId"]) == 12  # generated, as create does

    # Every count is the sum of its ledger, which says where the stamps came from.
    for count, summed, sources in ledger(cli.database_url, account).values():
        assert count == summed and sources == {"IMPORT"}

    card = cli.ok("card", "create", "--account", account, "--name", "Tea", "--max-stamps", "5")
    assert int(card.split()[-1]) > base + 2
    issued = cli.ok("stamp", "create", "--account", account, "--card", str(base + 1))
    assert int(issued.split()[-1]) > base + 274


def test_running_the_same_file_again_changes_nothing(cli: Cli, base: int, tmp_path: Path) -> None:
    account = cli.account()
    rows = [stamp_row(base + n, base + 1, stamps=n) for n in range(1, 6)]
    rows.append(stamp_row(base + 6, base + 1, userId=None, regYmdt=None))
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    cli.ok("import", "--account", account, str(path))
    before = (cli.export(account), ledger(cli.database_url, account))

    again = cli.ok("import", "--account", account, str(path))
    assert "0 new, 6 already here, 0 refused" in again and "created" not in again
    assert (cli.export(account), ledger(cli.database_url, account)) == before

    # A stamp used since the import is not put back by the old file.
    stamp = str(base + 1)
    cli.ok("stamp", "add", "--account", account, "--stamp", stamp)
    after_use = cli.export(account)
    changed = cli.ok("import", "--account", account, str(path))
    assert "6 already here (1 of them differ from the file" in changed
    assert cli.export(account) == after_use


def test_a_dry_run_reports_what_would_happen_and_writes_nothing(
    cli: Cli, base: int, tmp_path: Path
) -> None:
    account = cli.account()
    path = write_jsonl(tmp_path / "in.jsonl", [stamp_row(base + 500, base + 1)])
    out = cli.ok("import", "--account", account, "--dry-run", str(path))
    assert "1 new" in out and f"card {base + 1} created" in out and "dry run" in out
    assert cli.export(account) == []
    assert "Accumulate" not in cli.ok("card", "list", "--account", account)
    assert "1 new" in cli.ok("import", "--account", account, str(path))


def test_every_bad_row_is_named_by_its_line_and_nothing_is_written(
    cli: Cli, base: int, tmp_path: Path
) -> None:
    account = cli.account()
    good = stamp_row(base + 1, base + 1)
    lines = [
        good,  # line 1
        stamp_row(base + 2, base + 1, stamps=11),  # above maxStamps
        stamp_row(base + 3, base + 1, stampz=3),  # misspelt field
        stamp_row(base + 4, base + 1, strtYmd="2025-02-30"),
        stamp_row(base + 1, base + 1),  # the same stampIdx again
        stamp_row(base + 6, base + 1, endYmd="2024-12-31"),  # ends before it starts
        stamp_row(base + 7, base + 99, cardNm=None),  # no such card, no name to create it
    ]
    path = write_jsonl(tmp_path / "in.jsonl", lines)
    with path.open("a") as file:
        file.write("\n{not json\n")  # a blank line, then line 9
    result = cli.run("import", "--account", account, str(path))
    assert result.exit_code == 1
    refused = result.stderr.splitlines()
    assert refused == [
        "line 2: stamps: 11 is above the card's maxStamps 10",
        "line 3: unknown field: stampz",
        "line 4: strtYmd: Value error, must be a real date as YYYY-MM-DD",
        f"line 5: stampIdx {base + 1} is also on line 1",
        "line 6: strtYmd/endYmd: endYmd must not be before strtYmd nor more than 5 years "
        "from today.",
        f"line 7: no card {base + 99} in this account; cardNm and maxStamps create one",
        "line 9: not valid JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1))",
    ]
    assert "1 new" in result.stdout and "nothing was written" in result.stdout
    assert cli.export(account) == []
    assert "Accumulate" not in cli.ok("card", "list", "--account", account)

    skipped = cli.ok("import", "--account", account, "--skip-bad", str(path))
    assert "1 new, 0 already here, 7 refused" in skipped and "imported" in skipped
    assert [item["stampIdx"] for item in cli.export(account)] == [base + 1]


def test_a_stamp_of_another_account_is_refused_and_left_as_it_is(
    cli: Cli, base: int, tmp_path: Path
) -> None:
    owner, intruder = cli.account(), cli.account()
    path = write_jsonl(tmp_path / "in.jsonl", [stamp_row(base + 1, base + 1, stamps=3)])
    cli.ok("import", "--account", owner, str(path))
    before = cli.export(owner)

    other = write_jsonl(tmp_path / "other.jsonl", [stamp_row(base + 1, base + 1, stamps=9)])
    result = cli.run("import", "--account", intruder, "--skip-bad", str(other))
    assert f"line 1: stampIdx {base + 1} belongs to another account" in result.stderr
    assert cli.export(owner) == before and cli.export(intruder) == []
    assert cli.ok("card", "list", "--account", intruder).strip() == "(none)"


def test_csv_cells_are_read_strictly_and_empty_cells_are_absent(
    cli: Cli, base: int, tmp_path: Path
) -> None:
    account = cli.account()
    path = tmp_path / "in.csv"
    path.write_text(
        "stampIdx,cardIdx,cardNm,maxStamps,stamps,strtYmd,endYmd,memo,useYn\n"
        f"{base + 1},{base + 1},Tea,8,3,2025-01-01,2027-01-01,,\n"
        f'{base + 2},{base + 1},Tea,8,0,2025-01-01,2027-01-01,"two\nlines",Y\n'
        f"+{base + 3},{base + 1},Tea,8,0,2025-01-01,2027-01-01,,\n"
        f"{base + 4},{base + 1},Tea,8\n"
    )
    result = cli.run("import", "--account", account, str(path))
    assert result.stderr.splitlines() == [
        # Lines count as in the file: the quoted memo of line 3 runs onto line 4.
        "line 5: stampIdx: must be a whole number in ASCII digits",
        "line 6: 4 cells where the header has 9",
    ]
    cli.ok("import", "--account", account, "--skip-bad", str(path))
    first, second = cli.export(account)
    assert (first["memo"], first["useYn"], first["stamps"]) == (None, "N", 3)
    assert (second["memo"], second["useYn"]) == ("two\nlines", "Y")
    assert first["domain"] == PUBLIC_URL  # no domain: the server's own


def test_a_stampbook_page_address_is_kept_once_and_domains_can_be_reset(
    cli: Cli, base: int, tmp_path: Path
) -> None:
    owner, other = cli.account(), cli.account()
    token = "T" * 32
    page = f"https://old-server.example.com/s/{token}"
    first = stamp_row(base + 1, base + 1, stampUrl=page)
    twin = stamp_row(base + 2, base + 1, stampUrl=page)  # the same page twice
    result = cli.run("import", "--account", owner, "--skip-bad", "--reset-domain",
                     str(write_jsonl(tmp_path / "a.jsonl", [first, twin])))  # fmt: skip
    assert result.stderr.splitlines() == ["line 2: stampUrl: the same page as another row's"]
    (kept,) = cli.export(owner)
    # The customer's link works on the new server's address.
    assert kept["stampUrl"] == f"{PUBLIC_URL}/s/{token}" and kept["domain"] == PUBLIC_URL

    again = stamp_row(base + 3, base + 1, stampUrl=page)
    result = cli.run("import", "--account", other, str(write_jsonl(tmp_path / "b.jsonl", [again])))
    assert result.stderr.splitlines() == ["line 1: stampUrl: its page token is another stamp's"]


@pytest.mark.slow  # PostgreSQL only: not in `make test-fast`'s SQLite-only loop
def test_a_stamp_created_with_an_imported_id_during_the_import_fails_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only PostgreSQL lets another writer in while an import runs (SQLite's
    # import holds the write lock): a create taking one of the file's ids
    # then wins, and the import writes nothing rather than overwrite it.
    with scratch_database("postgresql", POSTGRES_ADMIN_URL) as url:
        cli = Cli(url, monkeypatch)
        account = cli.account()
        card = cli.ok("card", "create", "--account", account, "--name", "Accumulate 10 Americanos",
                      "--max-stamps", "10").split()[-1]  # fmt: skip
        rows = [stamp_row(700, int(card)), stamp_row(701, int(card))]
        path = write_jsonl(tmp_path / "in.jsonl", rows)

        async def race() -> Result:
            other = await asyncpg.connect(url.replace("postgresql://", "postgres://"))
            writing = other.transaction()
            await writing.start()
            await other.execute(
                "INSERT INTO stamp (stamp_idx, account_idx, card_idx, token, stamps, strt_ymd,"
                " end_ymd, active_yn, use_yn, user_id, max_stamps, reg_ymdt)"
                " SELECT 701, account_idx, $1, 'held-by-another-writer', 2, current_date,"
                " current_date, 'Y', 'N', 'other', 10, now() FROM account WHERE name = $2",
                int(card),
                account,
            )
            importing = asyncio.get_running_loop().run_in_executor(
                None, cli.run, "import", "--account", account, str(path)
            )
            # Commit once the import waits on the row this transaction holds
            # (watched from a third connection: inside a transaction,
            # pg_stat_activity keeps the snapshot of its first reading).
            watcher = await asyncpg.connect(url.replace("postgresql://", "postgres://"))
            query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            for _ in range(600):
                if await watcher.fetchval(query + " AND datname = current_database()"):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the import never waited on the held row")
            await watcher.close()
            await writing.commit()
            await other.close()
            return await importing

        result = asyncio.run(race())
        assert result.exit_code == 1 and "nothing was written" in result.stderr
        (held,) = cli.export(account)
        assert (held["stampIdx"], held["stamps"], held["userId"]) == (701, 2, "other")
