"""``stampbook wallet check``: what a usable configuration says, and the clear
error of each way it can be wrong."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stampbook.cli import app
from stampbook.config import Settings
from stampbook.wallet.credentials import check
from tests.wallet.pki import ApplePki, GoogleAccount, make_apple_pki

NOW = datetime.now(UTC)


def settings_of(**values: str) -> Settings:
    return Settings(database_url="sqlite:///unused.db", **values)


def errors(settings: Settings) -> list[str]:
    return [line for line in check(settings, now=NOW) if line.startswith("error")]


def test_a_usable_configuration_passes(apple_pki: ApplePki, google_account: GoogleAccount) -> None:
    lines = check(settings_of(**apple_pki.settings(), **google_account.settings()), now=NOW)
    assert not [line for line in lines if line.startswith("error")], lines
    assert any("Apple pass signing" in line for line in lines)
    assert any("token auth" in line for line in lines)
    assert any("Google Wallet issuer" in line for line in lines)


def test_unconfigured_says_the_feature_is_off() -> None:
    assert check(settings_of(), now=NOW) == [
        "no wallet is configured: the feature is off (docs/wallet.md)"
    ]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"apple_cert": "/no/such/file.pem"}, "cannot read /no/such/file.pem"),
        ({"apple_key_password": "wrong"}, "the password is wrong"),
        ({"apple_wwdr_cert": "ROOT"}, "did not issue"),
        ({"apple_key": "APNS", "apple_key_password": ""}, "does not belong to"),
        ({"apple_key": "APNS"}, "Password was given but private key is not encrypted"),
        ({"apple_team_id": "OTHERTEAM1"}, "belongs to team TEAM123456"),
        ({"apple_cert": "WWDR"}, "does not belong to"),
        ({"apns_key_id": ""}, "STAMPBOOK_APNS_KEY_ID is needed"),
    ],
)
def test_each_problem_is_named(apple_pki: ApplePki, change: dict[str, str], says: str) -> None:
    values = apple_pki.settings()
    named = {
        "ROOT": str(apple_pki.root),
        "APNS": str(apple_pki.apns_key),
        "WWDR": str(apple_pki.wwdr),
    }
    values.update({k: named.get(v, v) for k, v in change.items()})
    found = errors(settings_of(**values))
    assert len(found) == 1 and says in found[0], found


def test_an_expired_certificate_is_named(tmp_path: Path) -> None:
    expired = make_apple_pki(tmp_path, expired=True)
    found = errors(settings_of(**expired.settings()))
    assert len(found) == 1 and "STAMPBOOK_APPLE_CERT: the certificate expired" in found[0]


def test_half_a_configuration_is_an_error(apple_pki: ApplePki) -> None:
    values = apple_pki.settings()
    del values["apple_wwdr_cert"]
    found = errors(settings_of(**values))
    assert found == [
        "error: Apple Wallet is half configured (and so off): set STAMPBOOK_APPLE_WWDR_CERT"
    ]


def test_a_bad_service_account_is_named(tmp_path: Path, google_account: GoogleAccount) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"client_email": "x@y"}')
    found = errors(settings_of(google_issuer_id="123", google_service_account=str(broken)))
    assert len(found) == 1 and "client_email and private_key are needed" in found[0]
    copy = tmp_path / "good.json"
    shutil.copy(google_account.path, copy)
    found = errors(settings_of(google_issuer_id="not-digits", google_service_account=str(copy)))
    assert len(found) == 1 and "STAMPBOOK_GOOGLE_ISSUER_ID" in found[0]


def test_the_command_exits_1_on_an_error(
    apple_pki: ApplePki, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in apple_pki.settings().items():
        monkeypatch.setenv(f"STAMPBOOK_{name.upper()}", value)
    runner = CliRunner()
    good = runner.invoke(app, ["wallet", "check"])
    assert good.exit_code == 0 and "ok: Apple pass signing" in good.output
    monkeypatch.setenv("STAMPBOOK_APPLE_KEY_PASSWORD", "wrong")
    bad = runner.invoke(app, ["wallet", "check"])
    assert bad.exit_code == 1 and "password is wrong" in bad.output


def test_serve_runs_the_wallet_workers_only_when_a_wallet_is_on(apple_pki: ApplePki) -> None:
    from stampbook.jobs import background_jobs, wallet_forever

    assert wallet_forever not in background_jobs(settings_of())
    assert wallet_forever in background_jobs(settings_of(**apple_pki.settings()))
    off = settings_of(**apple_pki.settings(), wallet_workers_enabled="false")
    assert wallet_forever not in background_jobs(off)
