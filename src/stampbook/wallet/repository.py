"""SQL for passes, device registrations and the wallet jobs. Builds and runs
statements; never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.db.schema import account, wallet_job, wallet_pass, wallet_registration
from stampbook.wallet.outbox import FAILED, PENDING

# --- passes ----------------------------------------------------------------------


async def pass_of_stamp(conn: AsyncConnection, *, stamp_idx: int) -> Row[Any] | None:
    """The stamp's pass, if one was made."""
    query = select(wallet_pass).where(wallet_pass.c.stamp_idx == stamp_idx)
    return (await conn.execute(query)).first()


async def pass_by_serial(conn: AsyncConnection, *, serial: str) -> Row[Any] | None:
    """The pass with this serial number."""
    query = select(wallet_pass).where(wallet_pass.c.serial == serial)
    return (await conn.execute(query)).first()


async def pass_by_idx(conn: AsyncConnection, *, pass_idx: int) -> Row[Any] | None:
    """The pass with this idx."""
    query = select(wallet_pass).where(wallet_pass.c.pass_idx == pass_idx)
    return (await conn.execute(query)).first()


async def insert_pass(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """Make a stamp's pass (two first requests racing: the unique stamp_idx keeps one)."""
    await conn.execute(insert(wallet_pass).values(**values))


async def mark_google(conn: AsyncConnection, *, pass_idx: int) -> bool:
    """The pass was offered to Google Wallet: its changes sync from now on.
    True when it was not before."""
    result = await conn.execute(
        update(wallet_pass)
        .where(wallet_pass.c.pass_idx == pass_idx, wallet_pass.c.google_yn == "N")
        .values(google_yn="Y")
    )
    return bool(result.rowcount)


async def shop_name(conn: AsyncConnection, *, account_idx: int) -> str:
    """The account's name: the shop a pass names."""
    query = select(account.c.name).where(account.c.account_idx == account_idx)
    return str((await conn.execute(query)).scalar_one())


# --- registrations -------------------------------------------------------------------


async def registration(conn: AsyncConnection, *, pass_idx: int, device_id: str) -> Row[Any] | None:
    """A device's registration for a pass."""
    query = select(wallet_registration).where(
        wallet_registration.c.pass_idx == pass_idx,
        wallet_registration.c.device_id == device_id,
    )
    return (await conn.execute(query)).first()


async def insert_registration(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """Register a device for a pass's updates."""
    await conn.execute(insert(wallet_registration).values(**values))


async def set_push_token(conn: AsyncConnection, *, registration_idx: int, push_token: str) -> None:
    """A known device registered again, perhaps with a new push token."""
    await conn.execute(
        update(wallet_registration)
        .where(wallet_registration.c.registration_idx == registration_idx)
        .values(push_token=push_token)
    )


async def delete_registration(conn: AsyncConnection, *, registration_idx: int) -> bool:
    """Forget a device's registration (its queued pushes go with it)."""
    result = await conn.execute(
        delete(wallet_registration).where(
            wallet_registration.c.registration_idx == registration_idx
        )
    )
    return bool(result.rowcount)


async def serials_updated(
    conn: AsyncConnection, *, device_id: str, pass_type_id: str, since: datetime | None
) -> list[Any]:
    """The serials and change times of the device's passes changed after ``since``."""
    del pass_type_id  # one pass type per server: every pass here is of it
    query = (
        select(wallet_pass.c.serial, wallet_pass.c.updated_at)
        .select_from(
            wallet_pass.join(
                wallet_registration, wallet_registration.c.pass_idx == wallet_pass.c.pass_idx
            )
        )
        .where(wallet_registration.c.device_id == device_id)
        .order_by(wallet_pass.c.pass_idx)
    )
    if since is not None:
        query = query.where(wallet_pass.c.updated_at > since)
    return list((await conn.execute(query)).all())


# --- jobs ----------------------------------------------------------------------------


async def claim(
    conn: AsyncConnection,
    *,
    kind: str,
    now: datetime,
    lease_until: datetime,
    worker: str,
    limit: int,
) -> list[Any]:
    """Lease up to ``limit`` due jobs of ``kind`` to ``worker``, with what sending
    them needs. Due: pending, its time come, not leased or its lease run out (its
    worker died). ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, as the webhook
    dispatcher's claim (webhooks/repository.py)."""
    job = wallet_job
    due = (
        select(job.c.job_idx)
        .where(
            job.c.kind == kind,
            job.c.status == PENDING,
            job.c.next_attempt_at <= now,
            or_(job.c.locked_until.is_(None), job.c.locked_until <= now),
        )
        .order_by(job.c.job_idx)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = (
        await conn.execute(
            update(job)
            .where(job.c.job_idx.in_(due.scalar_subquery()))
            .values(locked_until=lease_until, locked_by=worker)
            .returning(job.c.job_idx, job.c.pass_idx, job.c.registration_idx, job.c.attempts)
        )
    ).all()
    if not claimed:
        return []
    reg = wallet_registration
    details = select(
        job.c.job_idx,
        job.c.pass_idx,
        job.c.registration_idx,
        job.c.attempts,
        reg.c.push_token,
        reg.c.device_id,
    ).select_from(job.outerjoin(reg, reg.c.registration_idx == job.c.registration_idx))
    details = details.where(job.c.job_idx.in_([row.job_idx for row in claimed]))
    return sorted((await conn.execute(details)).all(), key=lambda row: int(row.job_idx))


async def finish(conn: AsyncConnection, *, job_idx: int, worker: str) -> bool:
    """A job was sent: delete it, if ``worker`` still holds its lease."""
    result = await conn.execute(
        delete(wallet_job).where(wallet_job.c.job_idx == job_idx, wallet_job.c.locked_by == worker)
    )
    return bool(result.rowcount)


async def settle(
    conn: AsyncConnection,
    *,
    job_idx: int,
    worker: str,
    next_attempt_at: datetime | None,
    error: str,
) -> bool:
    """A job failed: due again at ``next_attempt_at``, or failed for good (None);
    only if ``worker`` still holds its lease."""
    values: dict[str, Any] = {"last_error": error[:500], "locked_until": None, "locked_by": None}
    if next_attempt_at is None:
        values["status"] = FAILED
    else:
        values["next_attempt_at"] = next_attempt_at
    result = await conn.execute(
        update(wallet_job)
        .where(wallet_job.c.job_idx == job_idx, wallet_job.c.locked_by == worker)
        .values(attempts=wallet_job.c.attempts + 1, **values)
    )
    return bool(result.rowcount)


async def pending_count(conn: AsyncConnection, *, kind: str | None = None) -> int:
    """Jobs still to send (of ``kind``, or all)."""
    query = select(wallet_job.c.job_idx).where(wallet_job.c.status == PENDING)
    if kind is not None:
        query = query.where(wallet_job.c.kind == kind)
    return len((await conn.execute(query)).all())


async def purge_failed(conn: AsyncConnection, *, before: datetime) -> int:
    """Delete jobs that failed for good and were created before ``before``."""
    result = await conn.execute(
        delete(wallet_job).where(wallet_job.c.status == FAILED, wallet_job.c.created_at < before)
    )
    return int(result.rowcount or 0)
