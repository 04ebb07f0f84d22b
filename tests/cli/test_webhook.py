"""``stampbook webhook …`` and ``stampbook worker --once``: the same services as the API."""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner

from stampbook.cli import app
from tests.webhooks.conftest import Receiver


@pytest.fixture
def run(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STAMPBOOK_DATABASE_URL", database_url)
    monkeypatch.setenv("STAMPBOOK_WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("STAMPBOOK_LOG_LEVEL", "warning")
    return CliRunner()


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


def test_the_webhook_commands_manage_endpoints_and_the_worker_delivers(
    run: CliRunner, receiver: Receiver
) -> None:
    account = f"cli-{uuid.uuid4().hex[:10]}"

    def ok(*args: str) -> str:
        result = run.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    ok("apikey", "create", "--account", account)
    card = last_line(
        ok("card", "create", "--account", account, "--name", "Tea", "--max-stamps", "3")
    )
    created = ok(
        "webhook", "create", "--account", account, "--url", receiver.url,
        "--event", "stamp.created", "--event", "stamp.added",
    )  # fmt: skip
    secret = last_line(created)
    assert secret.startswith("whsec_")
    receiver.secrets.append(secret)
    webhook = created.split()[1]
    listed = ok("webhook", "list", "--account", account)
    assert receiver.url in listed and "stamp.created,stamp.added" in listed and secret not in listed

    ok("stamp", "create", "--account", account, "--card", card)
    log = json.loads(ok("webhook", "deliveries", "--account", account, webhook, "--json"))
    (message,) = log["items"]
    assert (message["eventType"], message["status"]) == ("stamp.created", "pending")

    # Other tests share the session's database, so the worker may find their
    # leftovers too: count only what reached this test's receiver.
    assert "delivery attempt(s)" in ok("worker", "--once")
    (request,) = receiver.requests()
    assert request.signature_ok and request.msg_id == message["msgId"]
    assert "delivered" in ok("webhook", "deliveries", "--account", account, webhook)

    replayed = ok("webhook", "replay", "--account", account, webhook, "--msg-id", message["msgId"])
    assert "1 message(s)" in replayed
    ok("worker", "--once")
    assert [r.msg_id for r in receiver.requests()] == [message["msgId"]] * 2

    rotated = ok(
        "webhook", "update", "--account", account, webhook, "--active", "N", "--rotate-secret"
    )
    assert last_line(rotated).startswith("whsec_") and last_line(rotated) != secret
    assert "N" in ok("webhook", "list", "--account", account).splitlines()[1].split()

    refused = run.invoke(
        app, ["webhook", "create", "--account", account, "--url", "ftp://x.example/"]
    )
    assert refused.exit_code != 0
    ok("webhook", "delete", "--account", account, webhook)
    gone = run.invoke(app, ["webhook", "delete", "--account", account, webhook])
    assert gone.exit_code == 1 and "2201" in gone.output
