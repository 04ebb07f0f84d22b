"""``stampbook code create|list|revoke``: the codes service from the shell,
with a terminal QR code that decodes to the URL printed under it."""

from __future__ import annotations

import uuid

import pytest
from typer.testing import CliRunner

from stampbook.cli import app
from stampbook.cli.code import terminal_qr


@pytest.fixture
def run(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STAMPBOOK_DATABASE_URL", database_url)
    monkeypatch.setenv("STAMPBOOK_PUBLIC_URL", "https://shop.example.test")
    monkeypatch.setenv("STAMPBOOK_LOG_LEVEL", "warning")
    return CliRunner()


def test_code_create_prints_a_qr_and_the_url_and_list_and_revoke_manage_it(
    run: CliRunner,
) -> None:
    account = f"cli-{uuid.uuid4().hex[:10]}"

    def ok(*args: str) -> str:
        result = run.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    ok("apikey", "create", "--account", account)
    card = ok("card", "create", "--account", account, "--name", "Tea", "--max-stamps", "3")
    card_idx = card.strip().splitlines()[-1]

    output = ok("code", "create", "--account", account, "--card", card_idx, "--ttl", "120")
    lines = output.rstrip("\n").splitlines()
    url = lines[-1]
    assert url.startswith("https://shop.example.test/c/") and len(url.rsplit("/", 1)[1]) >= 22
    # The QR drawn above is exactly the one of that URL, in block characters.
    assert output.startswith(terminal_qr(url))
    assert set(terminal_qr(url)) <= {" ", "█", "▀", "▄", "\n"}
    assert "valid until" in lines[-2]

    listed = ok("code", "list", "--account", account)
    assert "live" in listed and url.rsplit("/", 1)[1] not in listed
    code_idx = lines[-2].split()[1].rstrip(",")
    assert ok("code", "revoke", "--account", account, code_idx).strip() == f"revoked {code_idx}"
    assert "revoked" in ok("code", "list", "--account", account, "--card", card_idx)

    again = run.invoke(app, ["code", "revoke", "--account", account, code_idx])
    assert again.exit_code == 1 and "2404" in again.output
    plain = ok("code", "create", "--account", account, "--card", card_idx, "--no-qr")
    assert len(plain.strip().splitlines()) == 2


def test_code_create_refuses_bad_options_and_unknown_cards(run: CliRunner) -> None:
    account = f"cli-{uuid.uuid4().hex[:10]}"
    run.invoke(app, ["apikey", "create", "--account", account])
    unknown = run.invoke(app, ["code", "create", "--account", account, "--card", "999999999"])
    assert unknown.exit_code == 1 and "2101" in unknown.output
    short = run.invoke(app, ["code", "create", "--account", account, "--card", "1", "--ttl", "5"])
    assert short.exit_code == 2
