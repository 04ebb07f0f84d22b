"""Import of an account's stamps (a migration from the hosted service, or
between Stampbook servers; ``transfer/export.py`` writes the same files).

An import keeps each row's ``stampIdx``, so that a POS that stored them keeps
working, and its count, flags, dates, user fields and ``regYmdt``; it finds or
creates the cards (by ``cardIdx``, then by ``cardNm``, keeping the file's
cardIdx when it is free). It is one transaction: all or nothing unless
``skip_bad``, and nothing at all with ``dry_run`` (the same work, rolled
back, so the report is exactly what a real run would do). A stampIdx already
in the account is left as it is, so running the same file again changes
nothing; one in another account refuses the row. Each new stamp gets one
ledger row (``CREATE``, source ``IMPORT``, from 0 to its count), so a count
still equals the sum of its ledger. An import queues no webhooks: bringing
records across is not customer activity.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import islice
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from stampbook.cards import repository as card_repo
from stampbook.cards import service as cards
from stampbook.cards.schemas import CreateCard
from stampbook.kit.clock import utc_naive
from stampbook.kit.context import SOURCE_IMPORT, CallContext
from stampbook.kit.db import Database
from stampbook.kit.errors import StampbookError
from stampbook.stamps import repository as stamp_repo
from stampbook.stamps import rules
from stampbook.stamps.service import new_token, new_user_id
from stampbook.stamps.views import DEFAULT_STAMP_IMAGE_PATH
from stampbook.transfer import repository as repo
from stampbook.transfer.formats import SourceLine
from stampbook.transfer.schemas import ImportRow

CHUNK_ROWS = 1000
# The page token inside a Stampbook stampUrl (``{domain}/s/{token}``): kept on
# import so customers' links keep working; anything shorter is not one of ours.
_TOKEN_IN_URL = re.compile(r"/s/([A-Za-z0-9_-]{32,64})/?$")
_USER_FIELDS = {
    "memo": "memo",
    "userNm": "user_nm",
    "userPhnno": "user_phnno",
    "userEml": "user_eml",
    "userEtc1": "user_etc1",
    "userEtc2": "user_etc2",
}


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """How to import: ``dry_run`` writes nothing; ``skip_bad`` keeps the good rows
    of a file with bad ones; ``reset_domain`` drops every row's domain."""

    dry_run: bool = False
    skip_bad: bool = False
    reset_domain: bool = False


@dataclass(frozen=True, slots=True)
class Rejection:
    """A row that was not imported: its line in the file and why."""

    line: int
    reason: str


@dataclass(slots=True)
class ImportReport:
    """What an import did (or, dry or refused, would have done)."""

    rows: int = 0
    created: int = 0
    present: int = 0
    differing: int = 0
    cards_created: list[tuple[int, str]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    highest_stamp_idx: int = 0
    committed: bool = False


@dataclass(frozen=True, slots=True)
class _Card:
    card_idx: int
    max_stamps: int


class _Refused(Exception):
    """A row's reason for refusal, raised while resolving it."""


class _CardRefused(_Refused):
    """The card of a row cannot be found nor created: every row naming it is refused."""


def _check_count(stamps: int, max_stamps: int) -> None:
    if rules.count_refusal(stamps, max_stamps) is not None:
        raise _Refused(f"stamps: {stamps} is above the card's maxStamps {max_stamps}")


class ImportConflict(Exception):
    """A row with an imported id appeared while the import ran (a create through
    the API, or a second import): nothing was written."""


class _Discard(Exception):
    """Leave the transaction without committing (a dry run, or a refused file)."""


def _chunks(lines: Iterable[SourceLine]) -> Iterator[tuple[SourceLine, ...]]:
    # itertools.batched arrives with Python 3.12; the floor is 3.11.
    source = iter(lines)
    while chunk := tuple(islice(source, CHUNK_ROWS)):
        yield chunk


async def import_stamps(
    db: Database,
    ctx: CallContext,
    lines: Iterable[SourceLine],
    options: ImportOptions,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import ``lines`` into the account of ``ctx`` in one transaction."""
    report = ImportReport()
    try:
        async with db.write() as conn:
            run = _Import(conn, replace(ctx, source=SOURCE_IMPORT), options, report)
            for chunk in _chunks(lines):
                await run.chunk(chunk)
                if progress is not None:
                    progress(len(chunk))
            report.rejected.sort(key=lambda rejection: rejection.line)
            if options.dry_run or (report.rejected and not options.skip_bad):
                raise _Discard
            await run.finish()
    except _Discard:
        return report
    except IntegrityError as exc:
        raise ImportConflict(
            "a stamp, card or page token of the file was created by someone else while the"
            " import ran; nothing was written: run the import again"
        ) from exc
    report.committed = True
    return report


class _Import:
    """One import's state: the cards found so far, the ids seen in the file."""

    def __init__(
        self, conn: AsyncConnection, ctx: CallContext, options: ImportOptions, report: ImportReport
    ) -> None:
        self.conn = conn
        self.ctx = ctx
        self.options = options
        self.report = report
        self.lines_of: dict[int, int] = {}  # stampIdx -> the line it was first seen on
        self.tokens: set[str] = set()
        self.cards: dict[tuple[int | None, str | None], _Card | str] = {}
        self.highest_card = 0
        self.default_image = f"{ctx.public_url}{DEFAULT_STAMP_IMAGE_PATH}"

    def reject(self, line: int, reason: str) -> None:
        """Record a refused row."""
        self.report.rejected.append(Rejection(line, reason))

    async def chunk(self, lines: tuple[SourceLine, ...]) -> None:
        """Check, resolve and insert one chunk of the file."""
        parsed: list[tuple[int, ImportRow]] = []
        for source in lines:
            self.report.rows += 1
            row = self.parse(source)
            if row is not None:
                parsed.append((source.line, row))
        existing = await repo.stamps_by_idx(self.conn, [row.stampIdx for _, row in parsed])
        new: list[tuple[int, dict[str, Any]]] = []
        for line, row in parsed:
            try:
                values = await self.resolve(row, existing.get(row.stampIdx))
            except _Refused as refused:
                self.reject(line, str(refused))
                continue
            if values is not None:
                new.append((line, values))
        taken = await repo.taken_tokens(self.conn, [values["token"] for _, values in new])
        stamps = []
        for line, values in new:
            if values["token"] in taken:
                self.reject(line, "stampUrl: its page token is another stamp's")
            else:
                stamps.append(values)
        await self.insert(stamps)

    def parse(self, source: SourceLine) -> ImportRow | None:
        """The checked row, or None after recording why it was refused."""
        if source.problem is not None:
            self.reject(source.line, source.problem)
            return None
        try:
            row = ImportRow.model_validate(source.fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "row"
            unknown = first["type"] == "extra_forbidden"
            self.reject(
                source.line, f"unknown field: {where}" if unknown else f"{where}: {first['msg']}"
            )
            return None
        except StampbookError as exc:
            self.reject(source.line, exc.message("en"))
            return None
        first_line = self.lines_of.setdefault(row.stampIdx, source.line)
        if first_line != source.line:
            self.reject(source.line, f"stampIdx {row.stampIdx} is also on line {first_line}")
            return None
        return row

    async def resolve(self, row: ImportRow, existing: Row[Any] | None) -> dict[str, Any] | None:
        """The new stamp's values, or None when it is already here."""
        if existing is not None:
            if existing.account_idx != self.ctx.account_idx:
                raise _Refused(f"stampIdx {row.stampIdx} belongs to another account")
            self.report.present += 1
            self.report.differing += not self.same(row, existing)
            return None
        refusal = rules.period_refusal(row.strtYmd, row.endYmd, self.ctx.today)
        if refusal is not None:
            raise _Refused(f"strtYmd/endYmd: {StampbookError(refusal).message('en')}")
        owner = await self.card_for(row)
        _check_count(row.stamps, owner.max_stamps)
        token = self.token_of(row)
        if token in self.tokens:
            raise _Refused("stampUrl: the same page as another row's")
        self.tokens.add(token)
        return {
            "stamp_idx": row.stampIdx,
            "account_idx": self.ctx.account_idx,
            "card_idx": owner.card_idx,
            "token": token,
            "domain": self.domain_of(row),
            "stamps": row.stamps,
            "max_stamps": owner.max_stamps,
            "strt_ymd": row.strtYmd,
            "end_ymd": row.endYmd,
            "active_yn": row.activeYn,
            "use_yn": row.useYn,
            "user_id": row.userId or new_user_id(),
            "reg_ymdt": self.stored_time(row.regYmdt),
            **{column: getattr(row, name) for name, column in _USER_FIELDS.items()},
        }

    def same(self, row: ImportRow, existing: Row[Any]) -> bool:
        """True when the stamp already here holds what the row says."""
        wanted: dict[str, Any] = {
            "stamps": row.stamps,
            "strt_ymd": row.strtYmd,
            "end_ymd": row.endYmd,
            "active_yn": row.activeYn,
            "use_yn": row.useYn,
            **{column: getattr(row, name) for name, column in _USER_FIELDS.items()},
        }
        if row.userId is not None:
            wanted["user_id"] = row.userId
        if row.regYmdt is not None:
            wanted["reg_ymdt"] = self.stored_time(row.regYmdt)
        # The files hold whole seconds; what the API stores may hold more.
        stored = {column: getattr(existing, column) for column in wanted}
        stored["reg_ymdt"] = existing.reg_ymdt.replace(microsecond=0)
        return all(stored[column] == value for column, value in wanted.items())

    async def card_for(self, row: ImportRow) -> _Card:
        """The row's card: this account's by cardIdx (when the name agrees), else
        by cardNm, else created from the row's card fields (once per file)."""
        key = (row.cardIdx, row.cardNm)
        if key not in self.cards:
            try:
                self.cards[key] = await self.find_or_create_card(row)
            except _CardRefused as refused:
                self.cards[key] = str(refused)
        found = self.cards[key]
        if isinstance(found, str):
            raise _Refused(found)
        return found

    async def find_or_create_card(self, row: ImportRow) -> _Card:
        """``card_for``'s search, uncached."""
        account_idx = self.ctx.account_idx
        if row.cardIdx is None and row.cardNm is None:
            raise _CardRefused("cardIdx or cardNm is required")
        if row.cardIdx is not None:
            here = await card_repo.get(self.conn, account_idx=account_idx, card_idx=row.cardIdx)
            if here is not None and row.cardNm in (None, here.card_nm):
                return _Card(int(here.card_idx), int(here.max_stamps))
        if row.cardNm is not None:
            named = await repo.card_named(self.conn, account_idx=account_idx, name=row.cardNm)
            if named is not None:
                return _Card(int(named.card_idx), int(named.max_stamps))
        if row.cardNm is None or row.maxStamps is None:
            raise _CardRefused(
                f"no card {row.cardIdx} in this account; cardNm and maxStamps create one"
            )
        # Not for this row's count: a later row may still create the card.
        _check_count(row.stamps, row.maxStamps)
        try:
            body = CreateCard(
                cardNm=row.cardNm,
                cardTtl=row.cardTtl,
                maxStamps=row.maxStamps,
                url=row.url,
                stampImgUrl=None if row.stampImgUrl == self.default_image else row.stampImgUrl,
                onsiteYn=row.onsiteYn or "N",
                onsitePwd=row.onsitePwd,
            )
            keep = row.cardIdx is not None and not await repo.card_idx_taken(
                self.conn, card_idx=row.cardIdx
            )
            card_idx = await cards.create(
                self.conn, self.ctx, body, card_idx=row.cardIdx if keep else None
            )
        except StampbookError as exc:
            raise _CardRefused(f"card {row.cardNm!r}: {exc.message('en')}") from exc
        except ValidationError as exc:
            raise _CardRefused(f"card {row.cardNm!r}: {exc.errors()[0]['msg']}") from exc
        if keep:
            self.highest_card = max(self.highest_card, card_idx)
        self.report.cards_created.append((card_idx, row.cardNm))
        return _Card(card_idx, row.maxStamps)

    def token_of(self, row: ImportRow) -> str:
        """A Stampbook stampUrl's token (the customer's link keeps working), else a new one."""
        found = _TOKEN_IN_URL.search(row.stampUrl or "")
        return found.group(1) if found else new_token()

    def domain_of(self, row: ImportRow) -> str | None:
        """The row's own domain; none when it is this server's (it then follows
        ``STAMPBOOK_PUBLIC_URL``) or when the import resets domains."""
        if self.options.reset_domain or row.domain is None:
            return None
        domain = row.domain.rstrip("/")
        return None if domain == self.ctx.public_url else domain

    def stored_time(self, ymdt: str | None) -> datetime:
        """``regYmdt`` (the account's local time) as stored; now when the row has none."""
        if ymdt is None:
            return self.ctx.now_naive
        return utc_naive(datetime.fromisoformat(ymdt).replace(tzinfo=self.ctx.zone))

    async def insert(self, stamps: list[dict[str, Any]]) -> None:
        """Insert a chunk's new stamps and their ledger rows."""
        if not stamps:
            return
        highest = max(values["stamp_idx"] for values in stamps)
        self.report.highest_stamp_idx = max(self.report.highest_stamp_idx, highest)
        if self.conn.dialect.name == "postgresql" and not self.options.dry_run:
            # Before the insert: a concurrent create, numbered by the sequence,
            # then never takes one of these ids (the sequence is not rolled back).
            await repo.keep_generated_ids_above(
                self.conn, stamp_floor=highest, card_floor=self.highest_card
            )
        await repo.insert_stamps(self.conn, stamps)
        await repo.insert_events(self.conn, [self.event(values) for values in stamps])
        self.report.created += len(stamps)

    def event(self, values: dict[str, Any]) -> dict[str, Any]:
        """The ledger row of an imported stamp: created with its count."""
        return {
            "account_idx": self.ctx.account_idx,
            "stamp_idx": values["stamp_idx"],
            "card_idx": values["card_idx"],
            "action": stamp_repo.ACTION_CREATE,
            "stamps_before": 0,
            "stamps_after": values["stamps"],
            "source": self.ctx.source,
            "key_idx": None,
            "idempotency_key": None,
            "reg_ymdt": self.ctx.now_naive,
        }

    async def finish(self) -> None:
        """New stamps and cards are numbered after the highest imported ones."""
        await repo.keep_generated_ids_above(
            self.conn, stamp_floor=self.report.highest_stamp_idx, card_floor=self.highest_card
        )
