"""``stampbook webhook create|list|update|delete|deliveries|replay`` and ``stampbook worker``.

The commands call the same services as the API, in one transaction each, for
the account named by ``--account``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from datetime import timedelta
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.config import Settings
from stampbook.kit.db import Database
from stampbook.kit.errors import StampbookError
from stampbook.webhooks import service
from stampbook.webhooks.dispatcher import DEFAULT_BATCH_SIZE, DEFAULT_POLL_SECONDS, Dispatcher
from stampbook.webhooks.safety import vet_endpoint_url
from stampbook.webhooks.schemas import CreateWebhook, ReplayWebhook, UpdateWebhook

webhook_app = typer.Typer(help="Webhook endpoints, their delivery log and replay.")


def register(app: typer.Typer) -> None:
    """Hang ``webhook …`` and ``worker`` off the main command."""
    app.add_typer(webhook_app, name="webhook", no_args_is_help=True)
    app.command("worker")(worker)


def _vet(url: str | None) -> None:
    if url is None:
        return
    from stampbook.cli import _settings

    try:
        asyncio.run(vet_endpoint_url(url, allow_private=_settings().webhook_allow_private))
    except StampbookError as exc:
        typer.echo(f"error {int(exc.code)} {exc.code.name}: {exc.message('en')}", err=True)
        raise typer.Exit(1) from exc


def _in_account(account: str, work: Any) -> Any:
    """Run ``work(conn, ctx)`` for ``account`` in one write transaction."""
    from stampbook.cli import _account_context, _run_db

    async def run(conn: AsyncConnection, settings: Settings) -> Any:
        return await work(conn, await _account_context(conn, settings, account))

    return _run_db(run)


def _model(model: Any, **fields: Any) -> Any:
    try:
        return model(**fields)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


AccountOption = Annotated[str, typer.Option(help="The account's name.")]
WebhookArgument = Annotated[int, typer.Argument(help="webhookIdx (see `webhook list`).")]
EventOption = Annotated[
    list[str] | None,
    typer.Option("--event", help="Only this event type; repeat for several (default: all)."),
]


@webhook_app.command("create")
def webhook_create(
    account: AccountOption,
    url: Annotated[str, typer.Option(help="Where to POST the events (http or https).")],
    card: Annotated[int | None, typer.Option(help="Only this card's events (cardIdx).")] = None,
    event: EventOption = None,
) -> None:
    """Register an endpoint; its signing secret is printed alone on the last line, once."""
    body = _model(CreateWebhook, url=url, cardIdx=card, events=event or None)
    _vet(url)
    created = _in_account(account, lambda conn, ctx: service.create(conn, ctx, body))
    typer.echo(f"webhook {created['webhookIdx']} for account {account!r};")
    typer.echo("store its secret now: it is shown only once.")
    typer.echo(created["secret"])


@webhook_app.command("list")
def webhook_list(account: AccountOption) -> None:
    """List the account's endpoints (never their secrets)."""
    from stampbook.cli import _table

    result = _in_account(
        account, lambda conn, ctx: service.list_endpoints(conn, ctx, limit=100, cursor=None)
    )
    rows = [
        {**item, "events": ",".join(item["events"]) if item["events"] else "all"}
        for item in result["items"]
    ]
    _table(rows, ["webhookIdx", "url", "cardIdx", "events", "activeYn", "disabledReason"])


@webhook_app.command("update")
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
    body = _model(UpdateWebhook, **fields)
    _vet(url)
    result = _in_account(account, lambda conn, ctx: service.update(conn, ctx, body))
    typer.echo(f"webhook {webhook} updated")
    if result and result.get("secret"):
        typer.echo("store its new secret now: it is shown only once.")
        typer.echo(result["secret"])


@webhook_app.command("delete")
def webhook_delete(account: AccountOption, webhook: WebhookArgument) -> None:
    """Delete an endpoint, its pending messages and its delivery log."""
    _in_account(account, lambda conn, ctx: service.delete(conn, ctx, webhook_idx=webhook))
    typer.echo(f"webhook {webhook} deleted")


@webhook_app.command("deliveries")
def webhook_deliveries(
    account: AccountOption,
    webhook: WebhookArgument,
    status: Annotated[str | None, typer.Option(help="pending, delivered or failed.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the page as JSON.")] = False,
) -> None:
    """The delivery log: the endpoint's latest messages and their attempts."""
    from stampbook.cli import _table

    if status is not None and status not in ("pending", "delivered", "failed"):
        raise typer.BadParameter("status must be pending, delivered or failed")
    result = _in_account(
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
    _table(
        rows,
        ["msgId", "eventType", "stampIdx", "status", "attempts", "last", "nextAttemptYmdt"],
    )


@webhook_app.command("replay")
def webhook_replay(
    account: AccountOption,
    webhook: WebhookArgument,
    msg_id: Annotated[
        str | None, typer.Option(help="This message only (default: every failed one).")
    ] = None,
) -> None:
    """Send a message again, or every failed message of the endpoint."""
    body = _model(ReplayWebhook, webhookIdx=webhook, msgId=msg_id)
    result = _in_account(
        account,
        lambda conn, ctx: service.replay(conn, ctx, webhook_idx=webhook, msg_id=body.msgId),
    )
    typer.echo(f"{result['replayed']} message(s) queued again")


def worker(
    batch_size: Annotated[int, typer.Option(min=1, max=500)] = DEFAULT_BATCH_SIZE,
    poll_seconds: Annotated[float, typer.Option(min=0.05)] = DEFAULT_POLL_SECONDS,
    lease_seconds: Annotated[
        float | None,
        typer.Option(help="How long a claim lasts before another worker may take it over."),
    ] = None,
    once: Annotated[bool, typer.Option(help="Deliver what is due now, then exit.")] = False,
) -> None:
    """Deliver webhooks until interrupted (SIGINT or SIGTERM finish the batch in hand)."""
    from stampbook.cli import _settings

    settings = _settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    async def run() -> int:
        database = Database(settings.database_url, pool_size=settings.db_pool_size)
        dispatcher = Dispatcher(
            database,
            timeout=settings.webhook_timeout_seconds,
            allow_private=settings.webhook_allow_private,
            batch_size=batch_size,
            lease=timedelta(seconds=lease_seconds) if lease_seconds else None,
        )
        try:
            if once:
                return len(await dispatcher.drain())
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await dispatcher.run_forever(stop=stop, poll_seconds=poll_seconds)
            return 0
        finally:
            await dispatcher.aclose()
            await database.dispose()

    attempts = asyncio.run(run())
    if once:
        typer.echo(f"{attempts} delivery attempt(s) made")
