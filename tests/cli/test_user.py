"""``stampbook user create|list|disable|set-password``: the forms issue #14 fixes,
through the same users service as the dashboard's Users page."""

from __future__ import annotations

import uuid

import pytest
from typer.testing import CliRunner

from stampbook.cli import app


@pytest.fixture
def run(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STAMPBOOK_DATABASE_URL", database_url)
    monkeypatch.setenv("STAMPBOOK_LOG_LEVEL", "warning")
    return CliRunner()


def test_users_are_created_listed_reset_and_disabled(run: CliRunner) -> None:
    account = f"cli-{uuid.uuid4().hex[:10]}"
    owner = f"Owner-{uuid.uuid4().hex[:6]}@Example.com"
    staff = f"staff-{uuid.uuid4().hex[:6]}@example.com"

    def invoke(*args: str, stdin: str | None = None) -> tuple[int, str]:
        result = run.invoke(app, list(args), input=stdin)
        return result.exit_code, result.output

    code, out = invoke(
        "user", "create", "--account", account, "--email", owner, "--role", "owner",
        "--password-stdin", stdin="first password\n",
    )  # fmt: skip
    assert code == 0, out
    assert f"created owner {owner.lower()}" in out
    # Without --password-stdin the password is asked twice (not echoed).
    code, out = invoke(
        "user", "create", "--account", account, "--email", staff, "--role", "staff",
        stdin="staff password\nstaff password\n",
    )  # fmt: skip
    assert code == 0, out
    assert "Password" in out and "staff password" not in out

    code, out = invoke("user", "list", "--account", account)
    assert code == 0
    assert owner.lower() in out and staff in out and "owner" in out and "staff" in out

    code, out = invoke(
        "user", "create", "--account", account, "--email", staff, "--role", "staff",
        "--password-stdin", stdin="another password\n",
    )  # fmt: skip
    assert code == 1 and "2302" in out
    code, out = invoke(
        "user", "create", "--account", account, "--email", "x@example.com", "--role", "boss",
        "--password-stdin", stdin="long enough pw\n",
    )  # fmt: skip
    assert code == 1 and "2305" in out
    code, out = invoke("user", "set-password", staff, "--password-stdin", stdin="short\n")
    assert code == 1 and "2301 PASSWORD_TOO_SHORT" in out
    code, out = invoke("user", "set-password", staff, "--password-stdin", stdin="a new password\n")
    assert code == 0 and "sessions are ended" in out

    # The last owner stays; staff can go.
    code, out = invoke("user", "disable", owner)
    assert code == 1 and "2308" in out
    code, out = invoke("user", "disable", staff)
    assert code == 0
    code, out = invoke("user", "list", "--account", account)
    staff_line = next(line for line in out.splitlines() if staff in line)
    assert "yes" in staff_line.split()
    code, out = invoke("user", "disable", "nobody@example.com")
    assert code == 1 and "2303" in out
