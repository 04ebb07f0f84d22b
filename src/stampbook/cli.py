"""The ``stampbook`` command: serve, worker, migrations, accounts, keys, cards, demo.

The forms ``stampbook db upgrade``, ``stampbook apikey create --account NAME``
(the key alone on the last line of stdout), ``apikey list|revoke``,
``account list``, ``card create|list`` and ``serve`` are part of the contract.
The ``webhook`` commands and ``worker`` live in ``stampbook.webhooks.cli``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.accounts import service as accounts
from stampbook.cards import service as cards
from stampbook.cards.schemas import CreateCard
from stampbook.config import Settings
from stampbook.db import migrate
from stampbook.kit import idempotency, logs
from stampbook.kit.clock import Clock, utc_naive
from stampbook.kit.connections import connection_options
from stampbook.kit.context import SOURCE_CLI, CallContext, zone_for
from stampbook.kit.db import Database
from stampbook.kit.errors import StampbookError
from stampbook.kit.ratelimit import validate_limit
from stampbook.stamps import repository as stamp_repo
from stampbook.stamps import service as stamps
from stampbook.stamps.schemas import CreateStamp

app = typer.Typer(
    help="Stampbook: a self-hosted, wire-compatible stamp-card API server.", no_args_is_help=True
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys.", no_args_is_help=True)
account_app = typer.Typer(help="Accounts.", no_args_is_help=True)
card_app = typer.Typer(help="Cards.", no_args_is_help=True)
stamp_app = typer.Typer(help="Stamps.", no_args_is_help=True)
idem_app = typer.Typer(help="Idempotency keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(apikey_app, name="apikey")
app.add_typer(account_app, name="account")
app.add_typer(card_app, name="card")
app.add_typer(stamp_app, name="stamp")
app.add_typer(idem_app, name="idempotency")

T = TypeVar("T")
DEMO_ACCOUNT = "demo"
DEMO_FILE = Path(".stampbook-demo")


def _settings() -> Settings:
    return Settings()


def _run_db(work: Callable[[AsyncConnection, Settings], Awaitable[T]]) -> T:
    """Run ``work`` in one write transaction on the configured database."""
    settings = _settings()

    async def runner() -> T:
        database = Database(settings.database_url, pool_size=1)
        try:
            async with database.write() as conn:
                return await work(conn, settings)
        finally:
            await database.dispose()

    try:
        return asyncio.run(runner())
    except StampbookError as exc:
        typer.echo(f"error {int(exc.code)} {exc.code.name}: {exc.message('en')}", err=True)
        raise typer.Exit(1) from exc


async def _account_context(conn: AsyncConnection, settings: Settings, name: str) -> CallContext:
    found = await accounts.find_account(conn, name=name)
    if found is None:
        typer.echo(f"error: no account named {name!r} (see `stampbook account list`)", err=True)
        raise typer.Exit(1)
    return CallContext(
        account_idx=int(found["account_idx"]),
        zone=zone_for(found["timezone"] or settings.timezone),
        now=Clock().now(),
        public_url=settings.public_url,
        source=SOURCE_CLI,
    )


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        typer.echo("(none)")
        return
    text = [
        [str(row.get(col) if row.get(col) is not None else "-") for col in columns] for row in rows
    ]
    widths = [max(len(col), *(len(r[i]) for r in text)) for i, col in enumerate(columns)]
    typer.echo("  ".join(col.ljust(widths[i]) for i, col in enumerate(columns)))
    for r in text:
        typer.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)))


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Run the Alembic migrations to head on STAMPBOOK_DATABASE_URL."""
    settings = _settings()
    _ensure_sqlite_dir(settings)
    migrate.upgrade(settings.database_url, revision)
    typer.echo(f"database at {revision}: {_redacted(settings.database_url)}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's migration revision."""
    migrate.current(_settings().database_url)


@apikey_app.command("create")
def apikey_create(
    account: Annotated[str, typer.Option(help="Account name; created when missing.")],
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
) -> None:
    """Create an API key; the key is printed alone on the last line (shown only once)."""

    async def work(conn: AsyncConnection, settings: Settings) -> accounts.CreatedKey:
        return await accounts.create_key(
            conn, account_name=account, now=utc_naive(Clock().now()), name=name
        )

    created = _run_db(work)
    typer.echo(f"key {created.key_idx} ({created.prefix}…) for account {created.account_name!r};")
    typer.echo("store it now: it is shown only once.")
    typer.echo(created.key)


@apikey_app.command("list")
def apikey_list(account: Annotated[str | None, typer.Option()] = None) -> None:
    """List keys (prefix only, never the secret)."""
    rows = _run_db(lambda conn, _s: accounts.list_keys(conn, account_name=account))
    _table(rows, ["key_idx", "account", "prefix", "name", "created_at", "revoked_at"])


@apikey_app.command("revoke")
def apikey_revoke(
    key_idx: Annotated[int, typer.Argument(help="The key's number (apikey list).")],
) -> None:
    """Revoke a key: every later request with it is refused with 1101."""
    revoked = _run_db(
        lambda conn, _s: accounts.revoke_key(conn, key_idx=key_idx, now=utc_naive(Clock().now()))
    )
    if not revoked:
        typer.echo(f"error: no live key {key_idx}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked key {key_idx}")


@account_app.command("list")
def account_list() -> None:
    """List accounts with their live key counts."""
    rows = _run_db(lambda conn, _s: accounts.list_accounts(conn))
    _table(rows, ["account_idx", "name", "timezone", "rate_limit", "live_keys", "created_at"])


@account_app.command("set")
def account_set(
    name: str,
    timezone: Annotated[str | None, typer.Option(help="IANA zone for 'today'.")] = None,
    rate_limit: Annotated[
        str | None, typer.Option(help="Per-key limit, e.g. 600/minute, or 'off'.")
    ] = None,
) -> None:
    """Set an account's time zone or rate limit."""
    if timezone is not None:
        zone_for(timezone)
    if rate_limit is not None:
        try:
            validate_limit(rate_limit)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    found = _run_db(
        lambda conn, _s: accounts.set_account_options(
            conn, name=name, timezone=timezone, rate_limit=rate_limit
        )
    )
    if not found:
        typer.echo(f"error: no account named {name!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"account {name!r} updated")


@card_app.command("create")
def card_create(
    account: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option(help="cardNm")],
    max_stamps: Annotated[int, typer.Option(help="maxStamps, 1–100")],
    title: Annotated[str | None, typer.Option(help="cardTtl")] = None,
    url: Annotated[str | None, typer.Option()] = None,
    stamp_img_url: Annotated[str | None, typer.Option()] = None,
    onsite_password: Annotated[
        str | None, typer.Option(help="Enables on-site stamping with this password.")
    ] = None,
    min_interval_sec: Annotated[int, typer.Option()] = 0,
) -> None:
    """Create a card; prints its cardIdx on the last line."""
    try:
        body = CreateCard(
            cardNm=name,
            cardTtl=title,
            maxStamps=max_stamps,
            url=url,
            stampImgUrl=stamp_img_url,
            onsiteYn="Y" if onsite_password else "N",
            onsitePwd=onsite_password,
            minIntervalSec=min_interval_sec,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc

    async def work(conn: AsyncConnection, settings: Settings) -> int:
        return await cards.create(conn, await _account_context(conn, settings, account), body)

    typer.echo(_run_db(work))


@card_app.command("list")
def card_list(account: Annotated[str, typer.Option()]) -> None:
    """List an account's cards."""

    async def work(conn: AsyncConnection, settings: Settings) -> list[dict[str, Any]]:
        ctx = await _account_context(conn, settings, account)
        result = await cards.list_cards(conn, ctx, limit=100, cursor=None)
        return list(result["items"])

    _table(
        _run_db(work), ["cardIdx", "cardNm", "maxStamps", "onsiteYn", "minIntervalSec", "regYmdt"]
    )


@stamp_app.command("create")
def stamp_create(
    account: Annotated[str, typer.Option()],
    card: Annotated[int, typer.Option(help="cardIdx")],
    user_id: Annotated[str | None, typer.Option()] = None,
    days: Annotated[int, typer.Option(help="Valid from today for this many days.")] = 365,
) -> None:
    """Issue a stamp; prints its stampIdx, then its page URL."""

    async def work(conn: AsyncConnection, settings: Settings) -> dict[str, Any]:
        ctx = await _account_context(conn, settings, account)
        body = CreateStamp(
            cardIdx=card,
            strtYmd=ctx.today,
            endYmd=ctx.today + timedelta(days=days),
            userId=user_id,
        )
        stamp_idx = await stamps.create(conn, ctx, body)
        return await stamps.validate(conn, ctx, stamp_idx=stamp_idx)

    view = _run_db(work)
    typer.echo(view["stampUrl"])
    typer.echo(view["stampIdx"])


@stamp_app.command("add")
def stamp_add(
    account: Annotated[str, typer.Option()],
    stamp: Annotated[int, typer.Option(help="stampIdx")],
) -> None:
    """Add one stamp (same rules and ledger as the API, source CLI)."""

    async def work(conn: AsyncConnection, settings: Settings) -> dict[str, Any]:
        ctx = await _account_context(conn, settings, account)
        await stamps.add(conn, ctx, stamp_idx=stamp)
        row = await stamp_repo.view(conn, account_idx=ctx.account_idx, stamp_idx=stamp)
        return {"stamps": row.stamps if row else None, "max": row.max_stamps if row else None}

    result = _run_db(work)
    typer.echo(f"{result['stamps']} / {result['max']}")


@app.command("purge")
def purge_everything() -> None:
    """Purge expired Idempotency-Keys and webhook messages older than the retention."""
    from stampbook.jobs import housekeeping
    from stampbook.kit.runtime import Runtime

    async def run() -> tuple[int, int]:
        runtime = Runtime.build(_settings())
        try:
            return await housekeeping(runtime)
        finally:
            await runtime.close()

    keys, messages = asyncio.run(run())
    typer.echo(f"purged {keys} expired idempotency keys and {messages} old webhook messages")


@idem_app.command("purge")
def idempotency_purge() -> None:
    """Delete Idempotency-Keys older than the retention (24 h by default)."""
    removed = _run_db(
        lambda conn, settings: idempotency.purge(
            conn,
            now=utc_naive(Clock().now()),
            retention_hours=settings.idempotency_retention_hours,
        )
    )
    typer.echo(f"purged {removed} expired idempotency keys")


@app.command("demo")
def demo() -> None:
    """Create a demo account, key, card and stamp when none exist; print how to try them."""

    async def work(conn: AsyncConnection, settings: Settings) -> dict[str, Any]:
        saved = _load_demo(settings)
        now = Clock().now()
        existing = await accounts.find_account(conn, name=DEMO_ACCOUNT)
        if saved and existing and int(existing["account_idx"]) == saved.get("account_idx"):
            ctx = await _account_context(conn, settings, DEMO_ACCOUNT)
            try:
                view = await stamps.validate(conn, ctx, stamp_idx=int(saved["stamp_idx"]))
                return {**saved, "stamp_url": view["stampUrl"]}
            except StampbookError:
                pass
        created = await accounts.create_key(
            conn, account_name=DEMO_ACCOUNT, now=utc_naive(now), name="demo"
        )
        ctx = await _account_context(conn, settings, DEMO_ACCOUNT)
        card_idx = await cards.create(
            conn,
            ctx,
            CreateCard(
                cardNm="Coffee card",
                cardTtl="Collect 10 stamps to get one free Americano.",
                maxStamps=10,
                url="https://example.com",
                onsiteYn="Y",
                onsitePwd="1234",
            ),
        )
        stamp_idx = await stamps.create(
            conn,
            ctx,
            CreateStamp(
                cardIdx=card_idx,
                strtYmd=ctx.today,
                endYmd=ctx.today + timedelta(days=365),
                userNm="Demo customer",
            ),
        )
        view = await stamps.validate(conn, ctx, stamp_idx=stamp_idx)
        saved = {
            "database_url": settings.database_url,
            "account_idx": created.account_idx,
            "key": created.key,
            "card_idx": card_idx,
            "stamp_idx": stamp_idx,
        }
        return {**saved, "stamp_url": view["stampUrl"], "new": True}

    info = _run_db(work)
    if info.pop("new", False):
        saved = {k: v for k, v in info.items() if k != "stamp_url"}
        DEMO_FILE.write_text(json.dumps(saved, indent=2) + "\n")
        DEMO_FILE.chmod(0o600)
    base = _settings().public_url
    typer.echo(
        f"""
Stampbook demo is ready ({DEMO_FILE} keeps these for the next run).

  API key      {info["key"]}
  API          {base}/api/stamp/v1/
  API docs     {base}/docs
  Stamp page   {info["stamp_url"]}   (on-site staff password: 1234)

Try it:
  curl -s -X PUT {base}/api/stamp/v1/add \\
       -H 'Authorization: APIKey {info["key"]}' \\
       -H 'Content-Type: application/json' -d '{{"stampIdx": {info["stamp_idx"]}}}'
  curl -s '{base}/api/stamp/v1/validate?stampIdx={info["stamp_idx"]}' \\
       -H 'Authorization: APIKey {info["key"]}'
"""
    )


def _load_demo(settings: Settings) -> dict[str, Any] | None:
    try:
        saved: dict[str, Any] = json.loads(DEMO_FILE.read_text())
    except (OSError, ValueError):
        return None
    return saved if saved.get("database_url") == settings.database_url else None


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option(min=1)] = 1,
    dispatcher: Annotated[
        bool, typer.Option(help="Run the webhook dispatcher in this process.")
    ] = True,
) -> None:
    """Serve the API (and the stamp pages) with uvicorn."""
    import uvicorn

    if not dispatcher:
        os.environ["STAMPBOOK_DISPATCHER_ENABLED"] = "false"
    settings = _settings()
    logs.configure(settings.log_level, settings.log_format)
    typer.echo(
        f"Stampbook on http://{host}:{port} ({workers} worker(s)), "
        f"database {_redacted(settings.database_url)}"
    )
    uvicorn.run(
        "stampbook.app:serve_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        log_config=None,
        loop="auto",
        access_log=settings.access_log,
        **connection_options(settings),
    )


def _ensure_sqlite_dir(settings: Settings) -> None:
    if settings.is_sqlite:
        path = settings.database_url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def _redacted(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
    return url


# The webhook commands (``webhook …`` and ``worker``) hang off this app; imported
# last because they use the helpers above.
from stampbook.webhooks import cli as _webhook_cli  # noqa: E402

_webhook_cli.register(app)

if __name__ == "__main__":
    app()
