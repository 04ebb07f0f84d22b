"""The stamp object as the wire contract shows it (validate's result), and
validate's answer. The one renderer: the API and the webhook payloads (at
delivery, webhooks/outbox.py) both call ``render_stamp``.

validate returns the card's on-site password (``onsitePwd``) because the
contract says so. Nothing else needs it, so the same object everywhere else
(webhook payloads, which the delivery log keeps for 30 days, and ``list``
items) leaves it out, and the outbox never stores it (``SECRET_COLUMNS``).
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from stampbook.kit.clock import format_ymdt
from stampbook.kit.context import CallContext
from stampbook.kit.errors import Code, StampbookError
from stampbook.stamps import rules

PAYLOAD_VERSION = "v1"
DEFAULT_STAMP_IMAGE_PATH = "/static/stamp/default.svg"

# The view-row columns ``render_stamp`` reads (a test checks the list against
# the renderer), and those shown only to the account's own calls: the staff
# password never reaches a webhook receiver, nor the outbox.
RENDERED_COLUMNS = (
    "stamp_idx",
    "domain",
    "card_idx",
    "card_nm",
    "card_ttl",
    "stamps",
    "max_stamps",
    "token",
    "url",
    "strt_ymd",
    "end_ymd",
    "onsite_yn",
    "onsite_pwd",
    "memo",
    "active_yn",
    "user_id",
    "user_nm",
    "user_phnno",
    "user_eml",
    "user_etc1",
    "user_etc2",
    "stamp_img_url",
    "reg_ymdt",
)
SECRET_COLUMNS = frozenset({"onsite_pwd"})
RECEIVER_COLUMNS = tuple(name for name in RENDERED_COLUMNS if name not in SECRET_COLUMNS)


def stamp_domain(row: Any, public_url: str) -> str:
    """The stamp's own domain, or the server's public URL."""
    return str(row.domain or public_url).rstrip("/")


def stamp_url(row: Any, public_url: str) -> str:
    """The customer's page: ``{domain}/s/{token}``; the numeric idx never appears."""
    return f"{stamp_domain(row, public_url)}/s/{row.token}"


def render_stamp(
    row: Any, *, public_url: str, zone: ZoneInfo, secrets: bool = False
) -> dict[str, Any]:
    """The stamp object, field for field and in the contract's order; only with
    ``secrets`` (validate's answer) does it include ``onsitePwd``."""
    domain = stamp_domain(row, public_url)
    view: dict[str, Any] = {
        "stampIdx": row.stamp_idx,
        "domain": domain,
        "cardIdx": row.card_idx,
        "cardNm": row.card_nm,
        "cardTtl": row.card_ttl,
        "stamps": row.stamps,
        "maxStamps": row.max_stamps,
        "stampUrl": f"{domain}/s/{row.token}",
        "url": row.url,
        "strtYmd": row.strt_ymd.isoformat(),
        "endYmd": row.end_ymd.isoformat(),
        "onsiteYn": row.onsite_yn,
    }
    if secrets:
        view["onsitePwd"] = row.onsite_pwd
    view.update(
        memo=row.memo,
        activeYn=row.active_yn,
        userId=row.user_id,
        userNm=row.user_nm,
        userPhnno=row.user_phnno,
        userEml=row.user_eml,
        userEtc1=row.user_etc1,
        userEtc2=row.user_etc2,
        stampImgUrl=row.stamp_img_url or f"{public_url}{DEFAULT_STAMP_IMAGE_PATH}",
        regYmdt=format_ymdt(row.reg_ymdt, zone),
        payloadVersion=PAYLOAD_VERSION,
    )
    return view


def usable_view(ctx: CallContext, row: Any | None) -> dict[str, Any]:
    """validate's answer for a stamp view row: 2001 when there is none, the
    first usability rule that refuses, else the stamp object."""
    if row is None:
        raise StampbookError(Code.STAMP_NOT_FOUND)
    refusal = rules.usability_refusal(rules.state_of(row), ctx.today)
    if refusal is not None:
        raise StampbookError(refusal)
    return render_stamp(row, public_url=ctx.public_url, zone=ctx.zone, secrets=True)
