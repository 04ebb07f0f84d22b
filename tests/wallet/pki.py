"""Throwaway signing material made at run time (no key is ever committed):
a root CA, a stand-in for Apple's WWDR intermediate, a pass type certificate
with Apple's pass-signing extended key usage, an APNs auth key, and a Google
service account's JSON key."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PASS_TYPE_ID = "pass.test.stampbook"
TEAM_ID = "TEAM123456"
APNS_KEY_ID = "KEYID12345"
ISSUER_ID = "3388000000012345678"
# Apple's "Pass Type ID" extended key usage.
PASS_SIGNING_EKU = x509.ObjectIdentifier("1.2.840.113635.100.4.14")


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(**parts: str) -> x509.Name:
    oids = {
        "cn": NameOID.COMMON_NAME,
        "uid": NameOID.USER_ID,
        "ou": NameOID.ORGANIZATIONAL_UNIT_NAME,
    }
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in parts.items()])


def _cert(
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
    eku: list[x509.ObjectIdentifier] | None = None,
    not_after: datetime | None = None,
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, password: str | None = None
) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


@dataclass(frozen=True)
class ApplePki:
    """Paths of the PEM files, and the settings that name them."""

    root: Path
    wwdr: Path
    cert: Path
    key: Path
    apns_key: Path
    apns_public: ec.EllipticCurvePublicKey
    password: str

    def settings(self) -> dict[str, str]:
        """The Apple settings (token auth for APNs)."""
        return {
            "apple_pass_type_id": PASS_TYPE_ID,
            "apple_team_id": TEAM_ID,
            "apple_cert": str(self.cert),
            "apple_key": str(self.key),
            "apple_key_password": self.password,
            "apple_wwdr_cert": str(self.wwdr),
            "apns_key": str(self.apns_key),
            "apns_key_id": APNS_KEY_ID,
        }


def make_apple_pki(directory: Path, *, expired: bool = False) -> ApplePki:
    """A root, a WWDR stand-in it issued, and a pass type certificate the WWDR
    stand-in issued (with an encrypted key), written to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    root_key, wwdr_key, leaf_key = _key(), _key(), _key()
    root_name = _name(cn="Test Root CA")
    wwdr_name = _name(cn="Test WWDR Intermediate")
    root = _cert(root_name, root_key, root_name, root_key, ca=True)
    wwdr = _cert(wwdr_name, wwdr_key, root_name, root_key, ca=True)
    leaf = _cert(
        _name(uid=PASS_TYPE_ID, cn=f"Pass Type ID: {PASS_TYPE_ID}", ou=TEAM_ID),
        leaf_key,
        wwdr_name,
        wwdr_key,
        ca=False,
        # Apple's pass type certificates also authenticate their owner to APNs.
        eku=[PASS_SIGNING_EKU, ExtendedKeyUsageOID.CLIENT_AUTH],
        not_after=datetime.now(UTC) - timedelta(hours=1) if expired else None,
    )
    apns_key = ec.generate_private_key(ec.SECP256R1())
    password = "correct horse"
    files = {
        "root.pem": _pem(root),
        "wwdr.pem": _pem(wwdr),
        "pass.pem": _pem(leaf),
        "pass.key": _key_pem(leaf_key, password),
        "apns.p8": _key_pem(apns_key),
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return ApplePki(
        root=directory / "root.pem",
        wwdr=directory / "wwdr.pem",
        cert=directory / "pass.pem",
        key=directory / "pass.key",
        apns_key=directory / "apns.p8",
        apns_public=apns_key.public_key(),
        password=password,
    )


@dataclass(frozen=True)
class GoogleAccount:
    """A service account's key file and its public key."""

    path: Path
    email: str
    public_pem: bytes

    def settings(self) -> dict[str, str]:
        """The Google settings (the API and token URLs are the test's to add)."""
        return {"google_issuer_id": ISSUER_ID, "google_service_account": str(self.path)}


def make_google_account(directory: Path) -> GoogleAccount:
    """A service account JSON key file with a fresh RSA key."""
    directory.mkdir(parents=True, exist_ok=True)
    key = _key()
    email = "stampbook@test-project.iam.gserviceaccount.com"
    path = directory / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "client_email": email,
                "private_key_id": "k1",
                "private_key": _key_pem(key).decode(),
            }
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return GoogleAccount(path, email, public)
