"""The stamp object as the wire contract shows it (validate's result)."""

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


def render_stamp(row: Any, *, public_url: str, zone: ZoneInfo) -> dict[str, Any]:
    """The stamp object, field for field and in the contract's order."""
    domain = stamp_domain(row, public_url)
    return {
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
