"""``stampbook webhook create|list|update|delete|deliveries|replay``.

The commands call the same services as the API, in one transaction each, for
the account named by ``--account``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from stampbook.cli.shared import load_settings, parsed, refuse, run_in_account, table
from stampbook.kit.errors import StampbookError
from stampbook.webhooks import service
from stampbook.webhooks.safety import vet_endpoint_url
from stampbook.webhooks.schemas import CreateWebhook, ReplayWebhook, UpdateWebhook

app = typer.Typer(help="Webhook endpoints, their delivery log and replay.")


def _vet(url: str | None) -> None:
    if url is None:
        return
    try:
        asyncio.run(vet_endpoint_url(url, allow_private=load_settings().webhook_allow_private))
    except StampbookError as exc:
        refuse(exc)


AccountOption = Annotated[str, typer.Option(help="The account's name.")]
WebhookArgument = Annotated[int, typer.Argument(help="webhookIdx (see `webhook list`).")]
EventOption = Annotated[
    list[str] | None,
    typer.Option("--event", help="Only this event type; repeat for several (default: all)."),
]


@app.command("create")
def webhook_create(
    account: AccountOption,
    url: Annotated[str, typer.Option(help="Where to POST the events (http or https).")],
    card: Annotated[int | None, typer.Option(help="Only this card's events (cardIdx).")] = None,
    event: EventOption = None,
) -> None:
    """Register an endpoint; its signing secret is printed alone on the last line, once."""
    body = parsed(CreateWebhook, url=url, cardIdx=card, events=event or None)
    _vet(url)
    created = run_in_account(account, lambda conn, ctx: service.create(conn, ctx, body))
    typer.echo(f"webhook {created['webhookIdx']} for account {account!r};")
    typer.echo("store its secret now: it is shown only once.")
    typer.echo(created["secret"])


@app.command("list")
def webhook_list(account: AccountOption) -> None:
    """List the account's endpoints (never their secrets)."""
    result = run_in_account(
        account, lambda conn, ctx: service.list_endpoints(conn, ctx, limit=100, cursor=None)
    )
    rows = [
        {**item, "events": ",".join(item["events"]) if item["events"] else "all"}
        for item in result["items"]
    ]
    table(rows, ["webhookIdx", "url", "cardIdx", "events", "activeYn", "disabledReason"])


@app.command("update")
def webhook_update(
    account: AccountOption,
    webhook: WebhookArgument,
    url: Annotated[str | None, typer.Option()] = None,
    event: EventOption = None,
    all_events: Annotated[bool, typer.Option(help="Receive every event type again.")] = False,
    active: Annotated[str | None, typer.Option(help="Y or N.")] = None,
    rotate_secret: Annotated[
        bool, typer.Option(help="Issue a new secret (printed on the last line).")
    ] = False,
) -> None:
    """Change an endpoint's URL, event filter or state, or rotate its secret."""
    fields: dict[str, Any] = {"webhookIdx": webhook}
    if url is not None:
        fields["url"] = url
    if all_events:
        fields["events"] = None
    elif event:
        fields["events"] = event
    if active is not None:
        fields["activeYn"] = active.upper()
    if rotate_secret:
        fields["rotateSecretYn"] = "Y"
    body = parsed(UpdateWebhook, **fields)
    _vet(url)
    result = run_in_account(account, lambda conn, ctx: service.update(conn, ctx, body))
    typer.echo(f"webhook {webhook} updated")
    if result and result.get("secret"):
        typer.echo("store its new secret now: it is shown only once.")
        typer.echo(result["secret"])


@app.command("delete")
def webhook_delete(account: AccountOption, webhook: WebhookArgument) -> None:
    """Delete an endpoint, its pending messages and its delivery log."""
    run_in_account(account, lambda conn, ctx: service.delete(conn, ctx, webhook_idx=webhook))
    typer.echo(f"webhook {webhook} deleted")


@app.command("deliveries")
def webhook_deliveries(
    account: AccountOption,
    webhook: WebhookArgument,
    status: Annotated[str | None, typer.Option(help="pending, delivered or failed.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the page as JSON.")] = False,
) -> None:
    """The delivery log: the endpoint's latest messages and their attempts."""
    if status is not None and status not in ("pending", "delivered", "failed"):
        raise typer.BadParameter("status must be pending, delivered or failed")
    result = run_in_account(
        account,
        lambda conn, ctx: service.deliveries(
            conn, ctx, webhook_idx=webhook, status=status, limit=limit, cursor=None
        ),
    )
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    rows = []
    for item in result["items"]:
        last = item["attempts"][-1] if item["attempts"] else {}
        rows.append(
            {
                "msgId": item["msgId"],
                "eventType": item["eventType"],
                "stampIdx": item["stampIdx"],
                "status": item["status"],
                "attempts": len(item["attempts"]),
                "last": last.get("statusCode") or last.get("error"),
                "nextAttemptYmdt": item["nextAttemptYmdt"],
            }
        )
    table(
        rows,
        ["msgId", "eventType", "stampIdx", "status", "attempts", "last", "nextAttemptYmdt"],
    )


@app.command("replay")
def webhook_replay(
    account: AccountOption,
    webhook: WebhookArgument,
    msg_id: Annotated[
        str | None, typer.Option(help="This message only (default: every failed one).")
    ] = None,
) -> None:
    """Send a message again, or every failed message of the endpoint."""
    body = parsed(ReplayWebhook, webhookIdx=webhook, msgId=msg_id)
    result = run_in_account(
        account,
        lambda conn, ctx: service.replay(conn, ctx, webhook_idx=webhook, msg_id=body.msgId),
    )
    typer.echo(f"{result['replayed']} message(s) queued again")
