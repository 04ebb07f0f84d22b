"""Runtime settings, read from ``STAMPBOOK_*`` environment variables.

Settings are built by the app factory or the CLI, never at import time, so a
test can build as many differently configured apps as it likes.
"""

from __future__ import annotations

from ipaddress import ip_network
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stampbook.kit.ratelimit import validate_limit


def async_database_url(url: str) -> str:
    """Map a plain ``sqlite:///`` or ``postgresql://`` URL to its async driver."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    return url


def proxy_entries(text: str) -> list[str]:
    """The entries of a comma-separated ``trusted_proxies`` value, blanks dropped."""
    return [entry.strip() for entry in text.split(",") if entry.strip()]


class Settings(BaseSettings):
    """Everything an operator can set; each field maps to ``STAMPBOOK_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="STAMPBOOK_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./stampbook.db",
        description="sqlite:///path or postgresql://user@host/db",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Default base for a stamp's domain and its stampUrl.",
    )
    timezone: str = Field(default="UTC", description="Default zone for 'today' in date rules.")
    redis_url: str | None = Field(default=None, description="Shared rate-limit storage.")
    metrics_token: str | None = Field(
        default=None,
        min_length=16,
        description="Lets a client that is not on loopback read /metrics with "
        "'Authorization: Bearer <token>'; unset, only loopback clients may.",
    )
    redis_prefix: str = Field(
        default="stampbook",
        min_length=1,
        max_length=100,
        description="Prefix of the rate-limit counters in Redis, so that several "
        "deployments (or test runs) can share one Redis without sharing budgets.",
    )
    redis_timeout_seconds: float = Field(
        default=0.25,
        gt=0,
        le=10,
        description="Connect and answer timeout of each Redis call: past it, or on any "
        "Redis error, rate limits fall back to per-worker memory until Redis answers again.",
    )
    redis_retry_max_seconds: float = Field(
        default=30.0,
        gt=0,
        description="While Redis is down, it is tried again after 0.5 s, then twice as long "
        "each time, up to this; requests meanwhile never wait for it.",
    )
    rate_limit: str = Field(
        default="6000/minute", description="Default limit per API key; 'off' disables it."
    )
    idempotency_retention_hours: int = Field(default=24, ge=24)
    webhook_retention_days: int = Field(
        default=30, ge=1, description="Keep delivered and failed webhook messages this long."
    )
    db_pool_size: int = Field(
        default=10, ge=1, le=200, description="Connections per worker in each general pool."
    )
    db_hot_pool_size: int = Field(
        default=4,
        ge=1,
        le=200,
        description="Connections per worker for add, remove, validate and key lookups: "
        "each holds one for a single statement, so a few serve many requests, and more "
        "only add contention in the database (bench/README.md).",
    )
    db_connect_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="PostgreSQL: how long opening a connection may take before the "
        "request is answered 503/1902.",
    )
    db_statement_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="PostgreSQL: the longest a statement (or a wait for a pooled "
        "connection) may take, server-side and client-side, before 503/1902; a frozen "
        "database is then answered within this bound.",
    )
    sqlite_write_wait_seconds: float = Field(
        default=5.0,
        gt=0,
        description="SQLite: the budget of a write waiting for the write lock (behind "
        "this worker's other writers and other processes), counted from the moment the "
        "request asks to write; past it, 503/1902.",
    )
    sqlite_write_queue: int = Field(
        default=100,
        ge=1,
        description="SQLite: writers that may wait in one worker for the write lock; "
        "one more is answered 503/1902 at once.",
    )
    readiness_timeout_seconds: float = Field(
        default=2.0, gt=0, description="/readyz answers 503 when the database takes longer."
    )
    secret_key: str | None = Field(
        default=None,
        description="Signs page cookies; generated once and kept in the database when unset.",
    )
    lockout_failures: int = Field(default=5, ge=1)
    lockout_minutes: int = Field(default=15, ge=1)
    lockout_address_failures: int = Field(
        default=20,
        ge=1,
        description=(
            "Wrong on-site passwords on the stamp page from one client address, over "
            "all cards, before that address's on-site actions lock for "
            "STAMPBOOK_LOCKOUT_MINUTES (each card also locks after "
            "STAMPBOOK_LOCKOUT_FAILURES)."
        ),
    )
    session_idle_minutes: int = Field(
        default=120, ge=1, description="A dashboard session ends after this long unused."
    )
    session_absolute_hours: int = Field(
        default=12, ge=1, description="A dashboard session ends this long after sign-in."
    )
    login_email_failures: int = Field(
        default=5, ge=1, description="Failed dashboard sign-ins for one email before it locks."
    )
    login_address_failures: int = Field(
        default=20, ge=1, description="Failed dashboard sign-ins from one address before it locks."
    )
    login_lock_minutes: int = Field(
        default=15, ge=1, description="How long a locked dashboard sign-in stays locked."
    )
    login_slow_seconds: float = Field(
        default=1.0,
        ge=0,
        description="Delay of every sign-in answer once an email or address has failed twice.",
    )
    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = Field(default=15.0, gt=0)
    dispatcher_enabled: bool = Field(
        default=True, description="Run the webhook dispatcher inside `stampbook serve`."
    )
    key_cache: bool = Field(
        default=True,
        description="Cache API-key lookups in each worker until a key or an account "
        "changes: the database counts every change (migration 0005) and each worker "
        "watches the count, so a revocation reaches every worker within a second "
        "(stampbook/auth.py). Off looks every request up.",
    )
    auth_cache_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Also forget a cached key lookup after this long (0: only on a "
        "change). With STAMPBOOK_KEY_CACHE off, a plain cache of this age, which a "
        "revocation does not reach.",
    )
    max_body_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        description="Largest API request body; larger is refused 413 (1005) before it is "
        "read. Every field of every verb at its longest, JSON-escaped, fits twice over.",
    )
    max_form_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        description="Largest request body elsewhere (the stamp page's forms: a PIN, a "
        "password, a token); larger is refused 413 with a plain page.",
    )
    max_header_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        description="Largest request line plus headers `stampbook serve` reads; a larger "
        "head is refused 431 and its connection closed.",
    )
    read_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Time `stampbook serve` gives a client to send a whole request (from "
        "connecting, or from its first byte) before it closes the connection.",
    )
    keep_alive_seconds: int = Field(
        default=5,
        ge=1,
        description="Time `stampbook serve` keeps an idle connection open between requests.",
    )
    worker_start_seconds: int = Field(
        default=60,
        ge=5,
        description="Time `stampbook serve --workers N` gives a worker to start and answer "
        "uvicorn's health check before restarting it; a loaded small machine needs more "
        "than uvicorn's 5 s to import a worker.",
    )
    unauthorized_limit: str = Field(
        default="60/minute",
        description="Refused API keys (401) allowed per client address; beyond it every "
        "API request from that address is 429 (1201) until the window ends. 'off' disables.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or networks of reverse proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto are believed; empty believes none.",
    )
    # --- Apple Wallet (docs/wallet.md): all five of the first settings, or off.
    apple_pass_type_id: str | None = Field(
        default=None, description="Apple pass type identifier, e.g. pass.com.example.stamps."
    )
    apple_team_id: str | None = Field(
        default=None, description="Apple Developer team identifier (10 characters)."
    )
    apple_cert: str | None = Field(
        default=None, description="PEM path: the pass type certificate, which signs every pass."
    )
    apple_key: str | None = Field(
        default=None, description="PEM path: the pass type certificate's private key."
    )
    apple_key_password: str | None = Field(
        default=None, description="The private key's password, when it has one."
    )
    apple_wwdr_cert: str | None = Field(
        default=None,
        description="PEM path: Apple's WWDR intermediate certificate that issued apple_cert.",
    )
    apns_url: str = Field(
        default="https://api.push.apple.com",
        description="APNs base URL; the sandbox (api.sandbox.push.apple.com) never "
        "reaches Wallet passes, so this stays the default outside tests.",
    )
    apns_key: str | None = Field(
        default=None,
        description="Token auth: path of an APNs auth key (.p8). Unset: pushes use "
        "certificate auth with the pass type certificate and key.",
    )
    apns_key_id: str | None = Field(
        default=None, description="Token auth: the APNs auth key's 10-character key id."
    )
    apns_ca_file: str | None = Field(
        default=None,
        description="PEM path of extra CA certificates trusted for APNs (only for a "
        "stand-in server in tests; Apple's servers need none).",
    )
    apns_timeout_seconds: float = Field(
        default=15.0, gt=0, description="Bound of one push (connect, send, answer)."
    )
    # --- Google Wallet (docs/wallet.md): both of the first two settings, or off.
    google_issuer_id: str | None = Field(
        default=None, description="Google Wallet issuer id (digits) from the Pay & Wallet console."
    )
    google_service_account: str | None = Field(
        default=None, description="Path of the service account's JSON key file."
    )
    google_api_url: str = Field(
        default="https://walletobjects.googleapis.com/walletobjects/v1",
        description="Google Wallet REST API base URL.",
    )
    google_token_url: str = Field(
        default="https://oauth2.googleapis.com/token",
        description="Google's OAuth token endpoint for the service account.",
    )
    google_timeout_seconds: float = Field(
        default=15.0, gt=0, description="Bound of one Google call (token or object)."
    )
    wallet_workers_enabled: bool = Field(
        default=True,
        description="Run the wallet workers (APNs pushes, Google updates) inside "
        "`stampbook serve` when a wallet is configured.",
    )
    log_level: str = "info"
    log_format: str = Field(default="auto", pattern="^(auto|json|text)$")
    access_log: bool = Field(
        default=True,
        description="Log every request: method, path, status, duration (kit/access.py).",
    )

    @field_validator("public_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("unauthorized_limit")
    @classmethod
    def _valid_limit(cls, value: str) -> str:
        return validate_limit(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_proxies(cls, value: str) -> str:
        for entry in proxy_entries(value):
            if entry != "*":
                try:
                    ip_network(entry)  # as uvicorn reads it: host bits unset
                except ValueError as exc:
                    raise ValueError(f"not an address or network: {entry!r}") from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def async_database_url(self) -> str:
        """The SQLAlchemy URL with the async driver for this database."""
        return async_database_url(self.database_url)

    @property
    def apple_wallet(self) -> bool:
        """True when Apple Wallet passes are configured (docs/wallet.md)."""
        return all(
            (
                self.apple_pass_type_id,
                self.apple_team_id,
                self.apple_cert,
                self.apple_key,
                self.apple_wwdr_cert,
            )
        )

    @property
    def google_wallet(self) -> bool:
        """True when Google Wallet objects are configured (docs/wallet.md)."""
        return bool(self.google_issuer_id and self.google_service_account)

    @property
    def wallet(self) -> bool:
        """True when either wallet is on: changes then queue wallet updates."""
        return self.apple_wallet or self.google_wallet

    @property
    def is_sqlite(self) -> bool:
        """True when the embedded SQLite database is configured."""
        return self.database_url.startswith("sqlite")
