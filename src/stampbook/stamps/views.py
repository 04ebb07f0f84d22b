"""The stamp object as the wire contract shows it (validate's result).

validate returns the card's on-site password (``onsitePwd``) because the
contract says so. Nothing else needs it, so the same object everywhere else
(webhook payloads, which the delivery log keeps for 30 days, and ``list``
items) leaves it out: see ``SECRET_FIELDS``.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from stampbook.kit.clock import format_ymdt

PAYLOAD_VERSION = "v1"
DEFAULT_STAMP_IMAGE_PATH = "/static/stamp/default.svg"


def stamp_domain(row: Any, public_url: str) -> str:
    """The stamp's own domain, or the server's public URL."""
    return str(row.domain or public_url).rstrip("/")


def stamp_url(row: Any, public_url: str) -> str:
    """The customer's page: ``{domain}/s/{token}``; the numeric idx never appears."""
    return f"{stamp_domain(row, public_url)}/s/{row.token}"


# Fields only validate shows; every other rendering of the stamp omits them.
SECRET_FIELDS = ("onsitePwd",)


def render_stamp(
    row: Any, *, public_url: str, zone: ZoneInfo, secrets: bool = False
) -> dict[str, Any]:
    """The stamp object, field for field and in the contract's order; with
    ``secrets`` (validate only) it includes ``SECRET_FIELDS`` too."""
    domain = stamp_domain(row, public_url)
    view = {
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
        "onsitePwd": row.onsite_pwd,
        "memo": row.memo,
        "activeYn": row.active_yn,
        "userId": row.user_id,
        "userNm": row.user_nm,
        "userPhnno": row.user_phnno,
        "userEml": row.user_eml,
        "userEtc1": row.user_etc1,
        "userEtc2": row.user_etc2,
        "stampImgUrl": row.stamp_img_url or f"{public_url}{DEFAULT_STAMP_IMAGE_PATH}",
        "regYmdt": format_ymdt(row.reg_ymdt, zone),
        "payloadVersion": PAYLOAD_VERSION,
    }
    if not secrets:
        for name in SECRET_FIELDS:
            del view[name]
    return view
