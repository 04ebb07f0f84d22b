"""The database schema as SQLAlchemy Core tables (one MetaData).

The Alembic migrations are the schema of record; these tables mirror them for
building queries, and a test checks that a migrated database matches them.
Timestamps are stored as naive UTC; dates as ``DATE``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias).
Id = BigInteger().with_variant(Integer(), "sqlite")
# Every table with a generated id says ``sqlite_autoincrement=True``: without
# it SQLite reuses the id of the newest row once deleted (max(rowid) + 1), and
# a deleted stampIdx must never name another customer's card. PostgreSQL's
# sequences never reuse one anyway. Migration 0002 converted older databases.

# The customer search's text (stamps/search.py): the searched fields,
# lower-cased, joined by a unit separator nobody types, so a search never
# matches across two fields. Written as SQL with its constants inline, never
# bound: migration 0007 indexes this very expression on PostgreSQL (a
# trigram index), and a query's expression must equal it to use the index.
# ``||``, not concat(): SQLite has no concat() before 3.44, and PostgreSQL's
# is not immutable, so it could not be indexed.
SEARCHED_COLUMNS = ("user_id", "user_nm", "user_phnno", "user_eml")
SEARCH_SEPARATOR = "\x1f"
SEARCHED_TEXT_SQL = "lower({})".format(
    f" || '{SEARCH_SEPARATOR}' || ".join(f"coalesce(stamp.{name}, '')" for name in SEARCHED_COLUMNS)
)

# The same expression as PostgreSQL reads it back from the index (its casts
# spelled out), for the comparison of this file with the migrated database.


def _as_indexed() -> str:
    def field(name: str) -> str:
        return f"COALESCE({name}, ''::character varying)::text"

    joined = field(SEARCHED_COLUMNS[0])
    for name in SEARCHED_COLUMNS[1:]:
        joined = f"(({joined} || '{SEARCH_SEPARATOR}'::text) || {field(name)})"
    # Inside lower()'s own parentheses the outermost pair is left out.
    return f"lower({joined[1:-1]})"


SEARCHED_TEXT_AS_INDEXED = _as_indexed()

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

account = Table(
    "account",
    metadata,
    Column("account_idx", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("timezone", String(64), nullable=True),
    Column("rate_limit", String(64), nullable=True),
    Column("created_at", DateTime, nullable=False),
    # What the customer's stamp page shows instead of the product name (0006).
    Column("display_name", String(200), nullable=True),
    Column("logo_url", String(2000), nullable=True),
    sqlite_autoincrement=True,
)

api_key = Table(
    "api_key",
    metadata,
    Column("key_idx", Id, primary_key=True, autoincrement=True),
    Column(
        "account_idx",
        Id,
        ForeignKey("account.account_idx", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("name", String(100), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime, nullable=True),
    sqlite_autoincrement=True,
)

# When each key last answered a request (reads included), as its workers
# last flushed it (``jobs.record_key_uses_forever``). A table of its own:
# an UPDATE of ``api_key`` would count as a credential change and empty
# every worker's key cache (migration 0005's trigger).
api_key_use = Table(
    "api_key_use",
    metadata,
    Column(
        "key_idx",
        Id,
        ForeignKey("api_key.key_idx", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("last_used_at", DateTime, nullable=False),
)

card = Table(
    "card",
    metadata,
    Column("card_idx", Id, primary_key=True, autoincrement=True),
    Column(
        "account_idx",
        Id,
        ForeignKey("account.account_idx", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("card_nm", String(200), nullable=False),
    Column("card_ttl", String(500), nullable=True),
    Column("max_stamps", Integer, nullable=False),
    Column("url", String(2000), nullable=True),
    Column("stamp_img_url", String(2000), nullable=True),
    Column("onsite_yn", String(1), nullable=False, server_default="N"),
    Column("onsite_pwd", String(100), nullable=True),
    Column("min_interval_sec", Integer, nullable=False, server_default="0"),
    Column("reg_ymdt", DateTime, nullable=False),
    # A redemption issues the customer's next stamp of this card (0009).
    Column("auto_renew_yn", String(1), nullable=False, server_default="N"),
    # Stamps one stamp may receive per day in the account's zone; 0: no limit (0009).
    Column("max_adds_per_day", Integer, nullable=False, server_default="0"),
    # More stamps than this in one day send ``stamp.suspicious``; 0: never (0009).
    Column("suspicious_adds_per_day", Integer, nullable=False, server_default="0"),
    # 'N': deactivated, issues no new stamps; its stamps keep working (0010).
    Column("active_yn", String(1), nullable=False, server_default="Y"),
    sqlite_autoincrement=True,
)

stamp = Table(
    "stamp",
    metadata,
    Column("stamp_idx", Id, primary_key=True, autoincrement=True),
    Column(
        "account_idx",
        Id,
        ForeignKey("account.account_idx", ondelete="CASCADE"),
        nullable=False,
    ),
    # RESTRICT: a card cannot disappear from under its stamps (answered as 2102).
    Column(
        "card_idx",
        Id,
        ForeignKey("card.card_idx", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    Column("token", String(64), nullable=False, unique=True),
    Column("domain", String(2000), nullable=True),
    Column("stamps", Integer, nullable=False, server_default="0"),
    Column("strt_ymd", Date, nullable=False),
    Column("end_ymd", Date, nullable=False),
    Column("active_yn", String(1), nullable=False, server_default="Y"),
    Column("use_yn", String(1), nullable=False, server_default="N"),
    Column("memo", String(1000), nullable=True),
    Column("user_id", String(100), nullable=False),
    Column("user_nm", String(200), nullable=True),
    Column("user_phnno", String(200), nullable=True),
    Column("user_eml", String(200), nullable=True),
    Column("user_etc1", String(200), nullable=True),
    Column("user_etc2", String(200), nullable=True),
    Column("pin_hash", String(200), nullable=True),
    Column("pin_failures", Integer, nullable=False, server_default="0"),
    Column("pin_locked_until", DateTime, nullable=True),
    # Epoch milliseconds of the last accepted add: the minimum-interval rule
    # compares against it inside the add's conditional UPDATE.
    Column("last_add_ms", BigInteger, nullable=True),
    # The card's maxStamps, copied onto each stamp so that the add's
    # conditional UPDATE compares two columns of the row it locks: on
    # PostgreSQL a concurrent change of the card re-checks against the new
    # value (a joined card row would be the stale one). Card updates keep it.
    Column("max_stamps", Integer, nullable=False),
    Column("reg_ymdt", DateTime, nullable=False),
    # The stamps added on ``day_ymd`` (the account's date of the last add):
    # the daily limit is checked and the counter kept by the add's own
    # conditional UPDATE, so the rule costs no query of its own (0009).
    Column("day_ymd", Date, nullable=True),
    Column("day_adds", Integer, nullable=False, server_default="0"),
    # The stamp its redemption issued, when the card renews itself (0009).
    Column("next_stamp_idx", Id, nullable=True),
    Index("ix_stamp_account_card", "account_idx", "card_idx", "stamp_idx"),
    Index("ix_stamp_account_user", "account_idx", "user_id"),
    # list, newest first, unfiltered or by one flag (0004).
    Index("ix_stamp_account", "account_idx", "stamp_idx"),
    Index("ix_stamp_account_active", "account_idx", "active_yn", "stamp_idx"),
    Index("ix_stamp_account_use", "account_idx", "use_yn", "stamp_idx"),
    # The customer search's text (stamps/search.py), by trigram: PostgreSQL
    # only (0007); SQLite scans.
    Index(
        "ix_stamp_search",
        text(SEARCHED_TEXT_AS_INDEXED),
        postgresql_using="gin",
        postgresql_ops={"searched": "gin_trgm_ops"},
    ),
    sqlite_autoincrement=True,
)

stamp_event = Table(
    "stamp_event",
    metadata,
    Column("event_idx", Id, primary_key=True, autoincrement=True),
    Column("account_idx", Id, nullable=False),
    # CASCADE: deleting a stamp deletes its history, as the contract says.
    Column(
        "stamp_idx",
        Id,
        ForeignKey("stamp.stamp_idx", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("card_idx", Id, nullable=False),
    Column("action", String(10), nullable=False),
    Column("stamps_before", Integer, nullable=False),
    Column("stamps_after", Integer, nullable=False),
    Column("source", String(10), nullable=False),
    Column("key_idx", Id, nullable=True),
    Column("idempotency_key", String(255), nullable=True),
    Column("reg_ymdt", DateTime, nullable=False),
    # The dashboard user behind a DASHBOARD row; NULL for other sources (0006).
    Column("user_idx", Id, nullable=True),
    # The receipt code a CODE change claimed (0009).
    Column("code_idx", Id, nullable=True),
    # history: both equalities in one index, or SQLite scans the account (0004).
    Index("ix_stamp_event_stamp", "stamp_idx", "account_idx", "event_idx"),
    Index("ix_stamp_event_account", "account_idx", "event_idx"),
    # a range of days, for the statistics, read from the index alone (0007).
    Index(
        "ix_stamp_event_account_time",
        "account_idx",
        "reg_ymdt",
        "action",
        "card_idx",
        "stamps_before",
        "stamps_after",
        "stamp_idx",
    ),
    sqlite_autoincrement=True,
)

idempotency_key = Table(
    "idempotency_key",
    metadata,
    Column(
        "account_idx",
        Id,
        ForeignKey("account.account_idx", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("idem_key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response_body", LargeBinary, nullable=True),
    Column("created_at", DateTime, nullable=False, index=True),
)

# Wrong on-site passwords, counted per (scope, subject): the stamp page's per
# card ("page_card", cardIdx) and per client address ("page_address"), and the
# API's per card ("api_card"), never shared with the page's. A count runs for
# one lock period from its first failure; reaching the limit locks until
# ``locked_until`` (stamps/onsite.py).
onsite_lockout = Table(
    "onsite_lockout",
    metadata,
    Column("scope", String(16), primary_key=True),
    Column("subject", String(100), primary_key=True),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("window_start", DateTime, nullable=True),
    Column("locked_until", DateTime, nullable=True),
)

# Counters of changes to what workers cache, one row per kind: database
# triggers add one to ``credentials`` on any change to ``api_key`` or
# ``account`` (migration 0005), and each worker's key cache watches it
# (stampbook/auth.py).
cache_generation = Table(
    "cache_generation",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("generation", BigInteger, nullable=False),
)

server_setting = Table(
    "server_setting",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

webhook_endpoint = Table(
    "webhook_endpoint",
    metadata,
    Column("webhook_idx", Id, primary_key=True, autoincrement=True),
    Column(
        "account_idx",
        Id,
        ForeignKey("account.account_idx", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("url", String(2000), nullable=False),
    Column("card_idx", Id, nullable=True),
    # Comma-wrapped event types (",stamp.added,stamp.used,") or NULL for all.
    Column("events", String(500), nullable=True),
    Column("secret", String(200), nullable=False),
    # After a rotation the old secret keeps signing beside the new one until
    # ``previous_secret_until``, so receivers can switch without a gap.
    Column("previous_secret", String(200), nullable=True),
    Column("previous_secret_until", DateTime, nullable=True),
    Column("active_yn", String(1), nullable=False, server_default="Y"),
    Column("disabled_reason", String(200), nullable=True),
    Column("reg_ymdt", DateTime, nullable=False),
    sqlite_autoincrement=True,
)

webhook_message = Table(
    "webhook_message",
    metadata,
    Column("message_idx", Id, primary_key=True, autoincrement=True),
    Column("msg_id", String(64), nullable=False, unique=True),
    Column(
        "webhook_idx",
        Id,
        ForeignKey("webhook_endpoint.webhook_idx", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("account_idx", Id, nullable=False),
    Column("stamp_idx", Id, nullable=True),
    Column("event_type", String(40), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(10), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime, nullable=False),
    # A claim is a lease: ``locked_by`` names the claiming worker, so a worker
    # whose lease ran out cannot overwrite the result of the one that took over.
    Column("locked_until", DateTime, nullable=True),
    Column("locked_by", String(64), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("delivered_at", DateTime, nullable=True),
    Index("ix_webhook_message_due", "status", "next_attempt_at"),
    Index("ix_webhook_message_endpoint", "webhook_idx", "message_idx"),
    # Per-stamp order: a message waits while an earlier one of its endpoint
    # and stamp is pending.
    Index("ix_webhook_message_stamp", "webhook_idx", "stamp_idx", "message_idx"),
    sqlite_autoincrement=True,
)

webhook_attempt = Table(
    "webhook_attempt",
    metadata,
    Column("attempt_idx", Id, primary_key=True, autoincrement=True),
    Column(
        "message_idx",
        Id,
        ForeignKey("webhook_message.message_idx", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("attempted_at", DateTime, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("response_excerpt", Text, nullable=True),
    Column("error", String(500), nullable=True),
    sqlite_autoincrement=True,
)

# People who sign in to the dashboard (0006). The email is unique over the
# server: ``stampbook user disable EMAIL`` names one person.
dashboard_user = Table(
    "dashboard_user",
    metadata,
    Column("user_idx", Id, primary_key=True, autoincrement=True),
    Column(
        "account_idx",
        Id,
        ForeignKey("account.account_idx", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(10), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("disabled_at", DateTime, nullable=True),
    sqlite_autoincrement=True,
)

# Dashboard sessions: a SHA-256 of the cookie's secret, revocable (0006).
dashboard_session = Table(
    "dashboard_session",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column(
        "user_idx",
        Id,
        ForeignKey("dashboard_user.user_idx", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created_at", DateTime, nullable=False),
    Column("last_seen_at", DateTime, nullable=False),
    Column("revoked_at", DateTime, nullable=True),
)

# --- wallet passes (wallet/, migration 0008) ------------------------------------

# One pass per stamp, made when the customer first asks for one. No foreign key
# to the stamp: a deleted stamp's pass lives on, voided, so a phone that asks
# for it learns it is void (``snapshot`` keeps what the pass last showed).
wallet_pass = Table(
    "wallet_pass",
    metadata,
    Column("pass_idx", Id, primary_key=True, autoincrement=True),
    # Opaque to the phone and to Google: never the stampIdx.
    Column("serial", String(64), nullable=False, unique=True),
    Column("auth_token", String(64), nullable=False),
    Column("stamp_idx", Id, nullable=False, unique=True),
    Column("account_idx", Id, nullable=False),
    # Y once a "Save to Google Wallet" link was made: changes then sync the object.
    Column("google_yn", String(1), nullable=False, server_default="N"),
    Column("voided_yn", String(1), nullable=False, server_default="N"),
    Column("snapshot", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    # The pass's last change: Last-Modified and the update tag of Apple's web service.
    Column("updated_at", DateTime, nullable=False),
    sqlite_autoincrement=True,
)

# A device that added the pass to Apple Wallet (PassKit web service).
wallet_registration = Table(
    "wallet_registration",
    metadata,
    Column("registration_idx", Id, primary_key=True, autoincrement=True),
    Column(
        "pass_idx",
        Id,
        ForeignKey("wallet_pass.pass_idx", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("device_id", String(200), nullable=False),
    Column("push_token", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("pass_idx", "device_id"),
    Index("ix_wallet_registration_device", "device_id", "pass_idx"),
    sqlite_autoincrement=True,
)

# The wallet outbox: one APNs push per registered device ("apns") or one
# Google object update per pass ("google") per change, written in the
# change's own transaction, leased and sent by the wallet workers.
wallet_job = Table(
    "wallet_job",
    metadata,
    Column("job_idx", Id, primary_key=True, autoincrement=True),
    Column("kind", String(10), nullable=False),
    Column(
        "pass_idx",
        Id,
        ForeignKey("wallet_pass.pass_idx", ondelete="CASCADE"),
        nullable=False,
    ),
    # Unregistering (or APNs' 410) deletes the device's pushes still queued.
    Column(
        "registration_idx",
        Id,
        ForeignKey("wallet_registration.registration_idx", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("status", String(10), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("locked_until", DateTime, nullable=True),
    Column("locked_by", String(64), nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Index("ix_wallet_job_due", "kind", "status", "next_attempt_at"),
    Index("ix_wallet_job_pass", "pass_idx"),
    Index("ix_wallet_job_registration", "registration_idx"),
    sqlite_autoincrement=True,
)

# Single-use receipt and till codes (codes/): the code itself is shown once
# and stored only as its SHA-256. A claim is one conditional UPDATE of the
# row (``used_at IS NULL AND revoked_at IS NULL AND expires_at > now``) in
# the add's own transaction (0009).
stamp_code = Table(
    "stamp_code",
    metadata,
    Column("code_idx", Id, primary_key=True, autoincrement=True),
    Column(
        "account_idx",
        Id,
        ForeignKey("account.account_idx", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "card_idx",
        Id,
        ForeignKey("card.card_idx", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("stamps", Integer, nullable=False),
    Column("memo", String(1000), nullable=True),
    Column("key_idx", Id, nullable=True),
    Column("expires_at", DateTime, nullable=False),
    Column("reg_ymdt", DateTime, nullable=False),
    Column("used_at", DateTime, nullable=True),
    Column("used_stamp_idx", Id, nullable=True),
    Column("revoked_at", DateTime, nullable=True),
    Index("ix_stamp_code_account", "account_idx", "code_idx"),
    sqlite_autoincrement=True,
)

# The statistics' rollups live in their own module, on this MetaData (0011).
from stampbook.db import rollup_schema  # noqa: E402, F401
