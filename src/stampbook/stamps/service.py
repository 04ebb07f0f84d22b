"""The stamp verbs: rules and the transaction's contents.

Each function runs inside a transaction its caller opened (``Call.write``, the
page, or the CLI) and raises ``StampbookError`` to refuse. Refusals happen
before any write, except the on-site password's failure counters
(``stamps/onsite.py``), which must be kept so that guessing locks out.
"""

from __future__ import annotations

import secrets
import string
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.cards import repository as card_repo
from stampbook.kit import metrics
from stampbook.kit.call import ServiceCall
from stampbook.kit.context import CallContext
from stampbook.kit.db import Database
from stampbook.kit.errors import Code, StampbookError
from stampbook.stamps import hot_path, onsite, rules
from stampbook.stamps import repository as repo
from stampbook.stamps.schemas import CreateStamp, UpdateStamp
from stampbook.stamps.views import usable_view
from stampbook.stats import rollups
from stampbook.wallet import outbox as wallet_outbox
from stampbook.webhooks import outbox

USER_ID_ALPHABET = string.ascii_letters + string.digits
USER_ID_LENGTH = 12
TOKEN_BYTES = 24  # 192 random bits in the page URL
CONDITIONAL_RETRIES = 3

# Wire names of the plain columns an update may set, and their columns.
_UPDATABLE = {
    "domain": "domain",
    "activeYn": "active_yn",
    "memo": "memo",
    "userId": "user_id",
    "userNm": "user_nm",
    "userPhnno": "user_phnno",
    "userEml": "user_eml",
    "userEtc1": "user_etc1",
    "userEtc2": "user_etc2",
}
# What the next stamp of a renewing card keeps of the redeemed one.
_USER_FIELDS = {field: column for field, column in _UPDATABLE.items() if field not in ("activeYn",)}


def new_user_id() -> str:
    """A generated userId: 12 letters and digits."""
    return "".join(secrets.choice(USER_ID_ALPHABET) for _ in range(USER_ID_LENGTH))


def new_token() -> str:
    """An unguessable page token (192 random bits, URL-safe)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def _refuse(code: Code | None) -> None:
    if code is not None:
        raise StampbookError(code)


async def _existing(
    conn: AsyncConnection, ctx: CallContext, stamp_idx: int, *, for_update: bool = False
) -> Row[Any]:
    row = await repo.view(
        conn, account_idx=ctx.account_idx, stamp_idx=stamp_idx, for_update=for_update
    )
    if row is None:
        raise StampbookError(Code.STAMP_NOT_FOUND)
    return row


async def record(
    conn: AsyncConnection,
    ctx: CallContext,
    after: Any,
    *,
    action: str,
    stamps_before: int,
    event_types: tuple[str, ...],
    wallet: bool = True,
    code_idx: int | None = None,
    extra: dict[str, Any] | None = None,
) -> int:
    """Write the ledger row, the outbox messages and the pass updates of one
    accepted change, and count it (``kit.metrics``: adds, removes, rewards
    redeemed); ``code_idx`` is the receipt code it claimed, ``extra`` the
    webhooks' own additions."""
    event_idx = await repo.insert_event(
        conn,
        {
            "p_account_idx": ctx.account_idx,
            "p_stamp_idx": after.stamp_idx,
            "p_card_idx": after.card_idx,
            "p_action": action,
            "p_stamps_before": stamps_before,
            "p_stamps_after": after.stamps,
            "p_source": ctx.source,
            "p_key_idx": ctx.key_idx,
            "p_user_idx": ctx.user_idx,
            "p_idem_key": ctx.idempotency_key,
            "p_now": ctx.now_naive,
            "p_code_idx": code_idx,
        },
    )
    await outbox.enqueue(
        conn, ctx, after, event_types, stamps_before=stamps_before, event_idx=event_idx, extra=extra
    )
    metrics.count_change(action)
    if ctx.wallet and wallet:
        await wallet_outbox.enqueue(conn, ctx, stamp_idx=after.stamp_idx)
    return event_idx


async def create(conn: AsyncConnection, ctx: CallContext, body: CreateStamp) -> int:
    """Issue a stamp on a card; returns the new stampIdx."""
    return int((await issue(conn, ctx, body)).stamp_idx)


async def issue(conn: AsyncConnection, ctx: CallContext, body: CreateStamp) -> Row[Any]:
    """Issue a stamp on a card, with its CREATE in the ledger; its view row."""
    _refuse(rules.period_refusal(body.strtYmd, body.endYmd, ctx.today))
    owner = await _issuing_card(conn, ctx, body.cardIdx)
    if owner is None:
        raise StampbookError(Code.CARD_NOT_FOUND)
    _refuse(rules.issue_refusal(owner.active_yn))
    return await _issue_on(conn, ctx, owner, body)


async def _issuing_card(conn: AsyncConnection, ctx: CallContext, card_idx: int) -> Row[Any] | None:
    # Held against a concurrent update (maxStamps, deactivation) until commit.
    return await card_repo.get(conn, account_idx=ctx.account_idx, card_idx=card_idx, for_share=True)


async def _issue_on(
    conn: AsyncConnection, ctx: CallContext, owner: Row[Any], body: CreateStamp
) -> Row[Any]:
    row = await repo.insert_stamp(
        conn,
        {
            "account_idx": ctx.account_idx,
            "card_idx": body.cardIdx,
            "token": new_token(),
            "domain": body.domain.rstrip("/") if body.domain else None,
            "stamps": 0,
            "max_stamps": owner.max_stamps,
            "strt_ymd": body.strtYmd,
            "end_ymd": body.endYmd,
            "active_yn": body.activeYn,
            "use_yn": "N",
            "memo": body.memo,
            "user_id": body.userId or new_user_id(),
            "user_nm": body.userNm,
            "user_phnno": body.userPhnno,
            "user_eml": body.userEml,
            "user_etc1": body.userEtc1,
            "user_etc2": body.userEtc2,
            "reg_ymdt": ctx.now_naive,
        },
    )
    await record(
        conn,
        ctx,
        row,
        action=repo.ACTION_CREATE,
        stamps_before=0,
        event_types=(outbox.STAMP_CREATED,),
        wallet=False,  # a new stamp has no pass yet
    )
    return row


# Accepted adds and removes done whole by the one-step path, by ledger action:
# the tests read it to prove that an accepted change takes that path.
ONE_STEP: Counter[str] = Counter()


async def add_at_once(
    db: Database, ctx: CallContext, fingerprint: str | None, *, stamp_idx: int
) -> ServiceCall | None:
    """The API's add: done whole in one step when every rule allows it (None),
    else the general path that answers: ``add``, which claims the key,
    replays, or diagnoses the refusal."""
    return await _at_once(db, ctx, fingerprint, hot_path.ADD, stamp_idx, add)


async def remove_at_once(
    db: Database, ctx: CallContext, fingerprint: str | None, *, stamp_idx: int
) -> ServiceCall | None:
    """The API's remove, as ``add_at_once``."""
    return await _at_once(db, ctx, fingerprint, hot_path.REMOVE, stamp_idx, remove)


async def _at_once(
    db: Database,
    ctx: CallContext,
    fingerprint: str | None,
    change: hot_path.Change,
    stamp_idx: int,
    general: Callable[..., Awaitable[None]],
) -> ServiceCall | None:
    if await hot_path.try_change(db, ctx, change, stamp_idx=stamp_idx, fingerprint=fingerprint):
        ONE_STEP[change.action] += 1
        metrics.count_change(change.action)  # committed, with no ledger call of ours
        return None
    return lambda conn, call_ctx: general(conn, call_ctx, stamp_idx=stamp_idx)


async def add(
    conn: AsyncConnection,
    ctx: CallContext,
    *,
    stamp_idx: int,
    count: int = 1,
    code_idx: int | None = None,
) -> None:
    """Add exactly one stamp (``count``: a receipt code's worth, at once, as one
    ADD; ``code_idx``: the code claimed), or refuse with the first rule that
    forbids it."""
    await _change(
        conn,
        ctx,
        hot_path.ADD,
        stamp_idx,
        lambda state: rules.add_refusal(state, ctx.today, ctx.now_ms, count),
        delta=count,
        code_idx=code_idx,
    )


async def remove(conn: AsyncConnection, ctx: CallContext, *, stamp_idx: int) -> None:
    """Take one stamp back; never below zero, never on a redeemed stamp."""
    await _change(conn, ctx, hot_path.REMOVE, stamp_idx, rules.remove_refusal)


async def _change(
    conn: AsyncConnection,
    ctx: CallContext,
    change: hot_path.Change,
    stamp_idx: int,
    refusal: Callable[[rules.StampState], Code | None],
    *,
    delta: int | None = None,
    code_idx: int | None = None,
) -> None:
    """The general path of an add or a remove: its conditional UPDATE, and
    when it matches nothing, the first rule that refuses."""
    params = hot_path.change_values(
        ctx, change, stamp_idx=stamp_idx, fingerprint=None, delta=delta, code_idx=code_idx
    )
    for _ in range(CONDITIONAL_RETRIES):
        after = (await conn.execute(change.update, params)).first()
        if after is not None:
            await record(
                conn,
                ctx,
                after,
                action=change.action,
                stamps_before=after.stamps - params["p_delta"],
                event_types=change.events_after(after),
                code_idx=code_idx,
                extra=None if code_idx is None else {"codeIdx": code_idx},
            )
            return
        current = await _existing(conn, ctx, stamp_idx)
        _refuse(refusal(rules.state_of(current)))
        # The state that refused us changed under our feet (a concurrent
        # remove, say): the conditional update is simply tried again.
    raise StampbookError(Code.SERVICE_UNAVAILABLE)


async def validate(conn: AsyncConnection, ctx: CallContext, *, stamp_idx: int) -> dict[str, Any]:
    """The stamp, when it exists, is active, within its dates and not redeemed."""
    return usable_view(ctx, await repo.view(conn, account_idx=ctx.account_idx, stamp_idx=stamp_idx))


async def redeem(
    conn: AsyncConnection,
    ctx: CallContext,
    *,
    stamp_idx: int,
    onsite_pwd: str | None,
    page_address: str | None = None,
) -> None:
    """Mark a complete card's reward as used; on-site cards need the staff password.

    The stamp's state is checked first: a stamp that cannot be redeemed never
    reaches the password, so it cannot be used to guess it. ``page_address``
    is the stamp page's client (its tries count on the page's counters); None
    for an API caller (the API's own counter, see ``stamps/onsite.py``).
    """
    row = await _existing(conn, ctx, stamp_idx, for_update=True)
    _refuse(rules.redeem_refusal(rules.state_of(row), ctx.today))
    if row.onsite_yn == "Y":
        await onsite.check_password(conn, ctx, row, onsite_pwd, page_address=page_address)
    after = await repo.mark_used(
        conn, account_idx=ctx.account_idx, stamp_idx=stamp_idx, today=ctx.today
    )
    if after is None:
        current = await _existing(conn, ctx, stamp_idx)
        _refuse(rules.redeem_refusal(rules.state_of(current), ctx.today))
        raise StampbookError(Code.STAMP_REDEEMED)
    await _used(conn, ctx, after)


async def _used(
    conn: AsyncConnection, ctx: CallContext, after: Row[Any], *, wallet: bool = True
) -> None:
    """The USE of a redeemed stamp; on a card that renews itself, first the
    customer's next stamp (same card and customer, a CREATE in the ledger),
    which the redeemed stamp and its ``stamp.used`` name. ``wallet`` is False
    when the caller's own record already queued the pass's update."""
    extra = None
    # A deactivated card issues no next stamp; the redemption itself stands.
    owner = await _issuing_card(conn, ctx, after.card_idx) if after.auto_renew_yn == "Y" else None
    if owner is not None and rules.issue_refusal(owner.active_yn) is None:
        strt, end = rules.next_period(after.strt_ymd, after.end_ymd, ctx.today)
        fields = {name: getattr(after, column) for name, column in _USER_FIELDS.items()}
        # Values the stamp already holds: valid by construction.
        body = CreateStamp.model_construct(
            cardIdx=after.card_idx, strtYmd=strt, endYmd=end, activeYn="Y", **fields
        )
        renewed = await _issue_on(conn, ctx, owner, body)
        after = await repo.update_fields(
            conn,
            account_idx=ctx.account_idx,
            stamp_idx=after.stamp_idx,
            values={"next_stamp_idx": renewed.stamp_idx},
        )
        extra = {"nextStampIdx": int(renewed.stamp_idx)}
    await record(
        conn,
        ctx,
        after,
        action=repo.ACTION_USE,
        stamps_before=after.stamps,
        event_types=(outbox.STAMP_USED,),
        extra=extra,
        wallet=wallet,
    )


async def update(conn: AsyncConnection, ctx: CallContext, body: UpdateStamp) -> None:
    """Change only the fields sent, within the rules (counts, period, card)."""
    sent = body.model_fields_set
    row = await _existing(conn, ctx, body.stampIdx, for_update=True)
    values: dict[str, Any] = {
        column: getattr(body, field) for field, column in _UPDATABLE.items() if field in sent
    }
    if values.get("domain"):
        values["domain"] = values["domain"].rstrip("/")

    max_stamps = row.max_stamps
    if "cardIdx" in sent and body.cardIdx != row.card_idx:
        assert body.cardIdx is not None
        target = await card_repo.get(
            conn, account_idx=ctx.account_idx, card_idx=body.cardIdx, for_share=True
        )
        if target is None:
            raise StampbookError(Code.CARD_NOT_FOUND)
        # A stamp moved onto a card is a stamp that card newly holds.
        _refuse(rules.issue_refusal(target.active_yn))
        values.update(card_idx=body.cardIdx, max_stamps=target.max_stamps)
        max_stamps = target.max_stamps
    stamps = body.stamps if body.stamps is not None else row.stamps
    _refuse(rules.count_refusal(stamps, max_stamps))
    if "stamps" in sent:
        values["stamps"] = stamps

    if "strtYmd" in sent or "endYmd" in sent:
        strt = body.strtYmd or row.strt_ymd
        end = body.endYmd or row.end_ymd
        _refuse(rules.period_refusal(strt, end, ctx.today))
        values.update(strt_ymd=strt, end_ymd=end)
    if body.resetPinYn == "Y":
        values.update(pin_hash=None, pin_failures=0, pin_locked_until=None)
    if body.useYn is not None:
        values["use_yn"] = body.useYn
    if not values:
        return

    # The statistics count a stamp's ADDs for its current userId.
    new_user = values.get("user_id", row.user_id) != row.user_id
    if new_user:
        await rollups.before_user_change(conn, stamp_idx=body.stampIdx)
    after = await repo.update_fields(
        conn, account_idx=ctx.account_idx, stamp_idx=body.stampIdx, values=values
    )
    if new_user:
        await rollups.after_user_change(conn, stamp_idx=body.stampIdx)
    await record(
        conn,
        ctx,
        after,
        action=repo.ACTION_UPDATE,
        stamps_before=row.stamps,
        event_types=(outbox.STAMP_UPDATED,),
    )
    if row.use_yn == "N" and after.use_yn == "Y":
        # the update's own record queued the pass's update
        await _used(conn, ctx, after, wallet=False)


async def delete(conn: AsyncConnection, ctx: CallContext, *, stamp_idx: int) -> None:
    """Delete a stamp for good, with its history; receivers get ``stamp.deleted``."""
    row = await _existing(conn, ctx, stamp_idx, for_update=True)
    if ctx.wallet:
        await wallet_outbox.void(conn, ctx, row)
    await rollups.before_stamp_deleted(conn, stamp_idx=stamp_idx)
    await repo.delete_stamp(conn, account_idx=ctx.account_idx, stamp_idx=stamp_idx)
    await rollups.after_stamp_deleted(conn, stamp_idx=stamp_idx)
    await outbox.enqueue(
        conn, ctx, row, (outbox.STAMP_DELETED,), stamps_before=row.stamps, event_idx=None
    )
