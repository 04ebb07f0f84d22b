"""An Apple Wallet pass file (``.pkpass``): pass.json, images, labels in
English and Korean, manifest.json with each file's SHA-1, and ``signature``,
a detached PKCS#7 (DER) over the manifest's exact bytes made with
``cryptography``, the WWDR intermediate included (Apple's "Building a Pass").
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import datetime, time
from functools import cache
from importlib import resources
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from stampbook.wallet.content import STATE_VOID, PassContent
from stampbook.wallet.credentials import AppleSigner

MEDIA_TYPE = "application/vnd.apple.pkpass"
IMAGES = tuple(f"{name}{suffix}.png" for name in ("icon", "logo") for suffix in ("", "@2x", "@3x"))
# A used or deleted stamp's pass is void (Wallet greys it out and files it away).
_VOID_STATES = frozenset({STATE_VOID, "used"})

# The labels, by key, in each language of the pass (<lang>.lproj/pass.strings).
LABELS = {
    "en": {
        "STAMPS": "Stamps",
        "STAMPS_CHANGED": "Stamps: %@",
        "REWARD": "Reward",
        "VALID": "Valid",
        "STATE": "Status",
        "PAGE": "Your stamp card",
        "active": "Collecting",
        "complete": "Reward ready",
        "used": "Reward used",
        "expired": "Expired",
        "not_started": "Not started yet",
        "inactive": "Paused",
        "void": "No longer valid",
    },
    "ko": {
        "STAMPS": "스탬프",
        "STAMPS_CHANGED": "스탬프: %@",
        "REWARD": "리워드",
        "VALID": "유효 기간",
        "STATE": "상태",
        "PAGE": "내 스탬프 카드",
        "active": "적립 중",
        "complete": "리워드 받을 수 있음",
        "used": "리워드 사용함",
        "expired": "기간 만료",
        "not_started": "아직 시작 전",
        "inactive": "일시 중지",
        "void": "더 이상 유효하지 않음",
    },
}


@cache
def default_image(name: str) -> bytes:
    """A built-in image (``IMAGES``), drawn by scripts/make_wallet_images.py."""
    return (resources.files("stampbook.wallet") / "images" / name).read_bytes()


def pass_json(
    content: PassContent,
    *,
    signer: AppleSigner,
    serial: str,
    auth_token: str,
    web_service_url: str,
) -> dict[str, Any]:
    """pass.json of a storeCard pass showing ``content``."""
    barcode = {
        "format": "PKBarcodeFormatQR",
        "message": content.page_url,
        "messageEncoding": "iso-8859-1",
        "altText": content.count,
    }
    fields: dict[str, Any] = {
        "headerFields": [{"key": "state", "label": "STATE", "value": content.state}],
        "primaryFields": [
            {
                "key": "stamps",
                "label": "STAMPS",
                "value": content.count,
                "changeMessage": "STAMPS_CHANGED",
            }
        ],
        "secondaryFields": [],
        "auxiliaryFields": [
            {
                "key": "valid",
                "label": "VALID",
                "value": f"{content.starts.isoformat()} – {content.ends.isoformat()}",
            }
        ],
        "backFields": [{"key": "page", "label": "PAGE", "value": content.page_url}],
    }
    if content.reward:
        fields["secondaryFields"].append(
            {"key": "reward", "label": "REWARD", "value": content.reward}
        )
    document: dict[str, Any] = {
        "formatVersion": 1,
        "passTypeIdentifier": signer.pass_type_id,
        "teamIdentifier": signer.team_id,
        "serialNumber": serial,
        "authenticationToken": auth_token,
        "webServiceURL": web_service_url,
        "organizationName": content.shop,
        "description": content.card_name,
        "logoText": content.shop,
        "foregroundColor": "rgb(255, 251, 235)",
        "backgroundColor": "rgb(120, 53, 15)",
        "labelColor": "rgb(253, 230, 138)",
        # The wallet shows the card's end as the pass's: past it, greyed out.
        "expirationDate": datetime.combine(content.ends, time(23, 59, 59)).isoformat() + "Z",
        "barcodes": [barcode],
        "barcode": barcode,  # iOS 8 and older read only this one
        "storeCard": fields,
    }
    if content.state in _VOID_STATES:
        document["voided"] = True
    return document


def _strings(labels: dict[str, str]) -> bytes:
    # pass.strings: "key" = "value"; lines, UTF-16 with a byte-order mark as Apple asks.
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    body = "".join(f"{quoted(key)} = {quoted(value)};\n" for key, value in labels.items())
    return body.encode("utf-16")


def sign(manifest: bytes, signer: AppleSigner) -> bytes:
    """The detached PKCS#7 signature (DER) over ``manifest``'s exact bytes."""
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(manifest)
        .add_signer(signer.cert, signer.key, hashes.SHA256())
        .add_certificate(signer.wwdr)
        .sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
        )
    )


def build(
    content: PassContent,
    *,
    signer: AppleSigner,
    serial: str,
    auth_token: str,
    web_service_url: str,
) -> bytes:
    """The signed .pkpass file (a zip) of ``content``."""
    files: dict[str, bytes] = {
        "pass.json": orjson.dumps(
            pass_json(
                content,
                signer=signer,
                serial=serial,
                auth_token=auth_token,
                web_service_url=web_service_url,
            )
        )
    }
    for name in IMAGES:
        files[name] = default_image(name)
    for lang, labels in LABELS.items():
        files[f"{lang}.lproj/pass.strings"] = _strings(labels)
    manifest = orjson.dumps(
        {name: hashlib.sha1(data).hexdigest() for name, data in files.items()},
        option=orjson.OPT_SORT_KEYS,
    )
    files["manifest.json"] = manifest
    files["signature"] = sign(manifest, signer)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()
