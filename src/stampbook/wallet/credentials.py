"""The wallet's certificates and keys, read from the files the settings name,
and the checks ``stampbook wallet check`` runs on them (docs/wallet.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from stampbook.config import Settings


class WalletConfigError(Exception):
    """A wallet setting names something unusable; the message says what and why."""


SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class AppleSigner:
    """What signs a pass: the pass type certificate, its key, Apple's WWDR intermediate."""

    pass_type_id: str
    team_id: str
    cert: x509.Certificate
    key: SigningKey
    wwdr: x509.Certificate


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """A Google service account: its email and RSA key (from the JSON key file)."""

    email: str
    key: rsa.RSAPrivateKey
    key_id: str | None


def _read(setting: str, path: str | None) -> bytes:
    if not path:
        raise WalletConfigError(f"STAMPBOOK_{setting} is not set")
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise WalletConfigError(f"STAMPBOOK_{setting}: cannot read {path}: {exc.strerror}") from exc


def _certificate(setting: str, path: str | None) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_read(setting, path))
    except ValueError as exc:
        raise WalletConfigError(f"STAMPBOOK_{setting}: {path} is not a PEM certificate") from exc


def _private_key(setting: str, path: str | None, password: str | None) -> Any:
    data = _read(setting, path)
    try:
        return serialization.load_pem_private_key(
            data, password=password.encode() if password else None
        )
    except TypeError as exc:  # a password given for a plain key, or none for an encrypted one
        raise WalletConfigError(f"STAMPBOOK_{setting}: {exc}") from exc
    except ValueError as exc:
        raise WalletConfigError(
            f"STAMPBOOK_{setting}: {path} is not a PEM private key, or the password is wrong"
        ) from exc


def _public_bytes(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _subject(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    found = cert.subject.get_attributes_for_oid(oid)
    return str(found[0].value) if found else None


def _in_date(setting: str, cert: x509.Certificate, now: datetime) -> None:
    if cert.not_valid_after_utc <= now:
        raise WalletConfigError(
            f"STAMPBOOK_{setting}: the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}"
        )
    if cert.not_valid_before_utc > now:
        raise WalletConfigError(
            f"STAMPBOOK_{setting}: the certificate is valid only from "
            f"{cert.not_valid_before_utc:%Y-%m-%d}"
        )


def load_apple(settings: Settings, *, now: datetime | None = None) -> AppleSigner:
    """The pass signer from the settings, every part checked: the files read,
    the key matches the certificate, neither certificate expired, and the WWDR
    certificate is the one that issued the pass type certificate."""
    if not settings.apple_pass_type_id or not settings.apple_team_id:
        raise WalletConfigError("STAMPBOOK_APPLE_PASS_TYPE_ID and STAMPBOOK_APPLE_TEAM_ID are set")
    cert = _certificate("APPLE_CERT", settings.apple_cert)
    key = _private_key("APPLE_KEY", settings.apple_key, settings.apple_key_password)
    wwdr = _certificate("APPLE_WWDR_CERT", settings.apple_wwdr_cert)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise WalletConfigError("STAMPBOOK_APPLE_KEY: an RSA or EC key is needed")
    if _public_bytes(key.public_key()) != _public_bytes(cert.public_key()):
        raise WalletConfigError("STAMPBOOK_APPLE_KEY does not belong to STAMPBOOK_APPLE_CERT")
    if now is not None:
        _in_date("APPLE_CERT", cert, now)
        _in_date("APPLE_WWDR_CERT", wwdr, now)
    try:
        cert.verify_directly_issued_by(wwdr)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise WalletConfigError(
            "STAMPBOOK_APPLE_WWDR_CERT did not issue STAMPBOOK_APPLE_CERT "
            "(download the WWDR intermediate named in the certificate's issuer)"
        ) from exc
    uid = _subject(cert, NameOID.USER_ID)
    if uid is not None and uid != settings.apple_pass_type_id:
        raise WalletConfigError(
            f"STAMPBOOK_APPLE_CERT is for {uid}, not STAMPBOOK_APPLE_PASS_TYPE_ID "
            f"{settings.apple_pass_type_id}"
        )
    team = _subject(cert, NameOID.ORGANIZATIONAL_UNIT_NAME)
    if team is not None and team != settings.apple_team_id:
        raise WalletConfigError(
            f"STAMPBOOK_APPLE_CERT belongs to team {team}, not STAMPBOOK_APPLE_TEAM_ID "
            f"{settings.apple_team_id}"
        )
    return AppleSigner(settings.apple_pass_type_id, settings.apple_team_id, cert, key, wwdr)


def apple_signer(settings: Settings) -> AppleSigner:
    """The pass signer, read once per process (decrypting the key is slow on
    purpose); a new certificate takes a restart, as any setting does."""
    return _cached_signer(
        settings.apple_pass_type_id,
        settings.apple_team_id,
        settings.apple_cert,
        settings.apple_key,
        settings.apple_key_password,
        settings.apple_wwdr_cert,
    )


@lru_cache(maxsize=4)
def _cached_signer(
    pass_type_id: str | None,
    team_id: str | None,
    cert: str | None,
    key: str | None,
    password: str | None,
    wwdr: str | None,
) -> AppleSigner:
    return load_apple(
        Settings.model_construct(
            apple_pass_type_id=pass_type_id,
            apple_team_id=team_id,
            apple_cert=cert,
            apple_key=key,
            apple_key_password=password,
            apple_wwdr_cert=wwdr,
        )
    )


def load_apns_key(settings: Settings) -> ec.EllipticCurvePrivateKey | None:
    """The APNs auth key (token auth), or None for certificate auth."""
    if not settings.apns_key:
        return None
    if not settings.apns_key_id:
        raise WalletConfigError("STAMPBOOK_APNS_KEY is set: STAMPBOOK_APNS_KEY_ID is needed too")
    key = _private_key("APNS_KEY", settings.apns_key, None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise WalletConfigError("STAMPBOOK_APNS_KEY: an APNs auth key (.p8, P-256) is needed")
    return key


def load_service_account(settings: Settings) -> ServiceAccount:
    """The Google service account from its JSON key file."""
    raw = _read("GOOGLE_SERVICE_ACCOUNT", settings.google_service_account)
    try:
        info = orjson.loads(raw)
        email = str(info["client_email"])
        pem = str(info["private_key"]).encode()
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise WalletConfigError(
            "STAMPBOOK_GOOGLE_SERVICE_ACCOUNT: not a service account JSON key "
            "(client_email and private_key are needed)"
        ) from exc
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError as exc:
        raise WalletConfigError(
            "STAMPBOOK_GOOGLE_SERVICE_ACCOUNT: its private_key is not a PEM key"
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise WalletConfigError("STAMPBOOK_GOOGLE_SERVICE_ACCOUNT: an RSA key is needed")
    if not (settings.google_issuer_id or "").isdigit():
        raise WalletConfigError("STAMPBOOK_GOOGLE_ISSUER_ID must be the issuer's digits")
    return ServiceAccount(email, key, info.get("private_key_id"))


def check(settings: Settings, *, now: datetime) -> list[str]:
    """Every wallet problem, as one line each ("ok: …" lines for what is right)."""
    lines: list[str] = []
    for wallet, names in (
        (
            "Apple",
            ("apple_pass_type_id", "apple_team_id", "apple_cert", "apple_key", "apple_wwdr_cert"),
        ),
        ("Google", ("google_issuer_id", "google_service_account")),
    ):
        unset = [name for name in names if not getattr(settings, name)]
        if 0 < len(unset) < len(names):
            missing = ", ".join(f"STAMPBOOK_{name.upper()}" for name in unset)
            lines.append(f"error: {wallet} Wallet is half configured (and so off): set {missing}")
    if not settings.wallet:
        if lines:
            return lines
        return ["no wallet is configured: the feature is off (docs/wallet.md)"]
    if settings.apple_wallet:
        try:
            signer = load_apple(settings, now=now)
            lines.append(
                f"ok: Apple pass signing for {signer.pass_type_id}, certificate valid until "
                f"{signer.cert.not_valid_after_utc:%Y-%m-%d}"
            )
            if load_apns_key(settings) is None:
                lines.append("ok: APNs with certificate auth")
            else:
                lines.append(f"ok: APNs with token auth (key {settings.apns_key_id})")
        except WalletConfigError as exc:
            lines.append(f"error: {exc}")
    if settings.google_wallet:
        try:
            account = load_service_account(settings)
            lines.append(f"ok: Google Wallet issuer {settings.google_issuer_id} as {account.email}")
        except WalletConfigError as exc:
            lines.append(f"error: {exc}")
    return lines
