"""The Apple Wallet pass: its contents, its manifest and its signature, which
OpenSSL verifies against the run's root CA (and refuses once a byte of the
manifest changes)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import httpx
import orjson
from sqlalchemy.dialects import postgresql

from stampbook.stamps import hot_path
from stampbook.wallet.pkpass import IMAGES, MEDIA_TYPE
from tests.conftest import Api
from tests.wallet.conftest import pass_count, pass_document, token_of, unzip
from tests.wallet.pki import PASS_TYPE_ID, TEAM_ID, ApplePki


def openssl_verify(
    files: dict[str, bytes], directory: Path, root: Path
) -> subprocess.CompletedProcess[bytes]:
    """``openssl smime -verify`` of the pass's signature over its manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "manifest.json").write_bytes(files["manifest.json"])
    (directory / "signature").write_bytes(files["signature"])
    return subprocess.run(
        [
            "openssl",
            "smime",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(directory / "signature"),
            "-content",
            str(directory / "manifest.json"),
            "-CAfile",
            str(root),
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ],
        capture_output=True,
        check=False,
    )


async def test_the_signature_verifies_and_fails_after_a_manifest_byte_changes(
    wallet_api: Api, apple_pki: ApplePki, tmp_path: Path
) -> None:
    stamp_idx = await wallet_api.stamp()
    answer = await wallet_api.http.get(f"/s/{await token_of(wallet_api, stamp_idx)}/pass.pkpass")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == MEDIA_TYPE
    files = unzip(answer.content)

    manifest = orjson.loads(files["manifest.json"])
    assert set(manifest) == set(files) - {"manifest.json", "signature"}
    for name, digest in manifest.items():
        assert hashlib.sha1(files[name]).hexdigest() == digest, name

    verified = openssl_verify(files, tmp_path / "good", apple_pki.root)
    assert verified.returncode == 0, verified.stderr.decode()

    tampered = dict(files)
    tampered["manifest.json"] = files["manifest.json"].replace(b'"icon.png":"', b'"icon.png":"0', 1)
    assert tampered["manifest.json"] != files["manifest.json"]
    refused = openssl_verify(tampered, tmp_path / "bad", apple_pki.root)
    assert refused.returncode != 0


async def test_the_signature_carries_the_wwdr_certificate(
    wallet_api: Api, apple_pki: ApplePki, tmp_path: Path
) -> None:
    stamp_idx = await wallet_api.stamp()
    answer = await wallet_api.http.get(f"/s/{await token_of(wallet_api, stamp_idx)}/pass.pkpass")
    signature = tmp_path / "signature"
    signature.write_bytes(unzip(answer.content)["signature"])
    shown = subprocess.run(  # noqa: ASYNC221 (a quick local openssl, in a test)
        ["openssl", "pkcs7", "-inform", "DER", "-in", str(signature), "-print_certs"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert "Test WWDR Intermediate" in shown and f"Pass Type ID: {PASS_TYPE_ID}" in shown


async def test_a_store_card_with_the_count_the_reward_and_an_opaque_serial(wallet_api: Api) -> None:
    card_idx = await wallet_api.card(cardNm="Bean Bar", cardTtl="Free latte at 10", maxStamps=10)
    stamp_idx = await wallet_api.stamp(card_idx)
    for _ in range(7):
        assert await wallet_api.add(stamp_idx) == 0
    token = await token_of(wallet_api, stamp_idx)
    answer = await wallet_api.http.get(f"/s/{token}/pass.pkpass")
    document = pass_document(answer.content)
    files = unzip(answer.content)

    assert document["formatVersion"] == 1
    assert document["passTypeIdentifier"] == PASS_TYPE_ID
    assert document["teamIdentifier"] == TEAM_ID
    assert document["description"] == "Bean Bar"
    assert document["organizationName"].startswith("test-")  # the account's (shop's) name
    assert document["webServiceURL"] == "https://stamps.example.test/wallet/apple"
    assert len(document["authenticationToken"]) >= 16
    serial = document["serialNumber"]
    assert len(serial) >= 16 and not serial.isdigit()  # opaque, never the stampIdx
    primary = document["storeCard"]["primaryFields"][0]
    assert primary["value"] == "7 / 10" and primary["changeMessage"]
    assert document["storeCard"]["secondaryFields"][0]["value"] == "Free latte at 10"
    valid = document["storeCard"]["auxiliaryFields"][0]["value"]
    assert wallet_api.today.isoformat() < valid.split(" – ")[1]
    assert document["barcodes"][0] == {
        "format": "PKBarcodeFormatQR",
        "message": f"https://stamps.example.test/s/{token}",
        "messageEncoding": "iso-8859-1",
        "altText": "7 / 10",
    }
    for name in IMAGES:
        assert files[name].startswith(b"\x89PNG"), name
    assert "스탬프" in files["ko.lproj/pass.strings"].decode("utf-16")
    assert "voided" not in document

    again = pass_document((await wallet_api.http.get(f"/s/{token}/pass.pkpass")).content)
    assert again["serialNumber"] == serial
    assert again["authenticationToken"] == document["authenticationToken"]


async def test_passes_of_two_stamps_have_their_own_serials_and_tokens(
    wallet_api: Api, database_url: str
) -> None:
    card_idx = await wallet_api.card()
    documents = []
    for _ in range(2):
        token = await token_of(wallet_api, await wallet_api.stamp(card_idx))
        documents.append(
            pass_document((await wallet_api.http.get(f"/s/{token}/pass.pkpass")).content)
        )
    assert documents[0]["serialNumber"] != documents[1]["serialNumber"]
    assert documents[0]["authenticationToken"] != documents[1]["authenticationToken"]
    assert await pass_count(database_url) >= 2


async def test_an_unknown_page_token_is_a_plain_404(wallet_client: httpx.AsyncClient) -> None:
    answer = await wallet_client.get("/s/no-such-token-at-all-here/pass.pkpass")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")


async def test_the_stamp_page_offers_both_wallets(wallet_api: Api) -> None:
    token = await token_of(wallet_api, await wallet_api.stamp())
    page = (await wallet_api.http.get(f"/s/{token}")).text
    assert f'href="/s/{token}/pass.pkpass"' in page
    assert f'href="/s/{token}/google-wallet"' in page
    korean = (await wallet_api.http.get(f"/s/{token}", headers={"accept-language": "ko"})).text
    assert "Apple 지갑에 추가" in korean and "Google 월렛에 저장" in korean


async def test_unconfigured_the_feature_is_off(api: Api, client: httpx.AsyncClient) -> None:
    token = await token_of(api, await api.stamp())
    page = (await client.get(f"/s/{token}")).text
    assert "pass.pkpass" not in page and "google-wallet" not in page
    assert (await client.get(f"/s/{token}/pass.pkpass")).status_code == 404
    assert (await client.get(f"/s/{token}/google-wallet")).status_code == 404
    assert (await client.post("/wallet/apple/v1/log", json={"logs": []})).status_code == 404


def test_unconfigured_the_one_statement_add_is_as_before() -> None:
    dialect = postgresql.dialect()
    plain = str(hot_path.one_statement(hot_path.ADD).statement.compile(dialect=dialect))
    assert "wallet" not in plain
    assert (
        str(hot_path.one_statement(hot_path.ADD, wallet=False).statement.compile(dialect=dialect))
        == plain
    )
    composed = str(
        hot_path.one_statement(hot_path.ADD, wallet=True).statement.compile(dialect=dialect)
    )
    assert "INSERT INTO wallet_job" in composed and "UPDATE wallet_pass" in composed
