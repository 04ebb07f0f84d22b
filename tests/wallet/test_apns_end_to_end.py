"""The PassKit web service end to end: a real server, a real ``stampbook
worker`` process and a real HTTP/2 APNs stand-in on 127.0.0.1 (TLS).

Register, add a stamp, and exactly one push reaches that device with the
pass type as ``apns-topic``; the serials since the old tag name the pass and
the new pass shows the new count; unregistering stops the pushes; a 410
removes the registration; and a worker killed mid-push loses nothing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import new_key
from tests.servers import STAMPBOOK_BIN, real_server
from tests.wallet.conftest import jobs_for_device, pass_document
from tests.wallet.pki import APNS_KEY_ID, PASS_TYPE_ID, TEAM_ID, ApplePki
from tests.wallet.standins import STALL, ApnsStandIn

pytestmark = pytest.mark.slow

BASE = "/wallet/apple/v1"
APNS_TIMEOUT = 3.0
# The worker's lease (its default would be 2 x 3 + 5 = 11 s): above the
# timeout, so a push in flight is never sent twice, and short, so that the
# killed worker's push is taken over without a long wait.
LEASE = "4"


def wait_until(check: Callable[[], bool], *, seconds: float = 30.0, what: str = "") -> None:
    """Poll ``check`` until it holds (the failure says what never happened)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def wallet_env(database_url: str, pki: ApplePki, apns: ApnsStandIn) -> dict[str, str]:
    """The settings of the server and the worker, as environment variables."""
    env = {f"STAMPBOOK_{name.upper()}": value for name, value in pki.settings().items()}
    return {
        **env,
        "STAMPBOOK_DATABASE_URL": database_url,
        "STAMPBOOK_APNS_URL": apns.url,
        "STAMPBOOK_APNS_CA_FILE": str(apns.ca_file),
        "STAMPBOOK_APNS_TIMEOUT_SECONDS": str(APNS_TIMEOUT),
        "STAMPBOOK_WALLET_WORKERS_ENABLED": "false",  # the worker process sends them
    }


@contextmanager
def worker_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``stampbook worker`` in its own process (SIGTERMed at the end)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("STAMPBOOK_")}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(STAMPBOOK_BIN), "worker", "--poll-seconds", "0.1", "--lease-seconds", LEASE],
            env={**base, **env, "STAMPBOOK_LOG_LEVEL": "info"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def apns_jobs(database_url: str, push_token: str) -> list[Any]:
    """The APNs jobs still queued for one device."""
    return asyncio.run(jobs_for_device(database_url, push_token))


def test_passkit_web_service_and_pushes_end_to_end(
    database_url: str, apple_pki: ApplePki, tmp_path: Path
) -> None:
    with ApnsStandIn(tmp_path) as apns:
        env = wallet_env(database_url, apple_pki, apns)
        with real_server(database_url, workers=1, env=env) as server:
            key, _ = asyncio.run(new_key(database_url))
            http = httpx.Client(base_url=server.base_url, timeout=30)
            api = {"Authorization": f"APIKey {key}"}

            def call(method: str, path: str, **kwargs: Any) -> Any:
                body = http.request(method, f"/api/stamp/v1/{path}", headers=api, **kwargs).json()
                assert body["code"] == 0, body
                return body["result"]

            card_idx = call("POST", "card/create", json={"cardNm": "Coffee", "maxStamps": 10})
            today = date.today()
            period = {
                "strtYmd": str(today - timedelta(days=1)),
                "endYmd": str(today + timedelta(days=300)),
            }
            stamp_idx = call("POST", "create", json={"cardIdx": card_idx, **period})
            token = call("GET", "list", params={"limit": 1})["items"][0]["stampUrl"].rsplit("/", 1)[
                1
            ]
            document = pass_document(http.get(f"/s/{token}/pass.pkpass").content)
            serial = document["serialNumber"]
            auth = {"Authorization": f"ApplePass {document['authenticationToken']}"}

            def register(device: str, push_token: str) -> int:
                path = f"{BASE}/devices/{device}/registrations/{PASS_TYPE_ID}/{serial}"
                return http.post(path, json={"pushToken": push_token}, headers=auth).status_code

            def serials(device: str, tag: str | None = None) -> httpx.Response:
                params = {"passesUpdatedSince": tag} if tag else None
                return http.get(
                    f"{BASE}/devices/{device}/registrations/{PASS_TYPE_ID}", params=params
                )

            device_a, push_a = f"dev-a-{uuid.uuid4().hex}", "a1" * 32
            assert register(device_a, push_a) == 201
            assert register(device_a, push_a) == 200
            old_tag = serials(device_a).json()["lastUpdated"]

            call("PUT", "add", json={"stampIdx": stamp_idx})
            log = tmp_path / "worker.log"
            with worker_process(env, log):
                wait_until(lambda: len(apns.pushes_to(push_a)) == 1, what="the push")
                wait_until(lambda: not apns_jobs(database_url, push_a), what="the job settled")
                time.sleep(0.5)  # a second push would come now, if any were queued
                assert len(apns.pushes_to(push_a)) == 1
                push = apns.pushes_to(push_a)[0]
                assert push.http_version == "2"
                assert push.path == f"/3/device/{push_a}"
                assert push.headers["apns-topic"] == PASS_TYPE_ID
                assert push.body == b'{"aps":{}}'
                bearer = push.headers["authorization"].removeprefix("bearer ")
                assert jwt.get_unverified_header(bearer)["kid"] == APNS_KEY_ID
                claims = jwt.decode(bearer, apple_pki.apns_public, algorithms=["ES256"])
                assert claims["iss"] == TEAM_ID

                changed = serials(device_a, old_tag)
                assert changed.status_code == 200 and changed.json()["serialNumbers"] == [serial]
                latest = http.get(f"{BASE}/passes/{PASS_TYPE_ID}/{serial}", headers=auth)
                fields = pass_document(latest.content)["storeCard"]["primaryFields"]
                assert fields[0]["value"] == "1 / 10"
                unchanged = http.get(
                    f"{BASE}/passes/{PASS_TYPE_ID}/{serial}",
                    headers={**auth, "If-Modified-Since": latest.headers["last-modified"]},
                )
                assert unchanged.status_code == 304

                # Unregistered: the next change pushes nothing to that device.
                path = f"{BASE}/devices/{device_a}/registrations/{PASS_TYPE_ID}/{serial}"
                assert http.delete(path, headers=auth).status_code == 200
                call("PUT", "add", json={"stampIdx": stamp_idx})
                time.sleep(1.0)
                assert len(apns.pushes_to(push_a)) == 1

                # APNs answers 410: the device no longer has the pass.
                device_b, push_b = f"dev-b-{uuid.uuid4().hex}", "b2" * 32
                apns.answers[push_b] = [410]
                assert register(device_b, push_b) == 201
                call("PUT", "add", json={"stampIdx": stamp_idx})
                wait_until(
                    lambda: serials(device_b).status_code == 204, what="registration dropped"
                )
                assert len(apns.pushes_to(push_b)) == 1
                assert not apns_jobs(database_url, push_b)

            # A worker killed mid-push (SIGKILL: no goodbye) loses nothing.
            device_c, push_c = f"dev-c-{uuid.uuid4().hex}", "c3" * 32
            apns.answers[push_c] = [STALL]
            assert register(device_c, push_c) == 201
            call("PUT", "add", json={"stampIdx": stamp_idx})
            with worker_process(env, log) as doomed:
                wait_until(lambda: len(apns.pushes_to(push_c)) == 1, what="the stalled push")
                doomed.send_signal(signal.SIGKILL)
                doomed.wait(timeout=10)
            assert (
                len(apns_jobs(database_url, push_c)) == 1
            )  # still queued, leased by the dead worker
            with worker_process(env, log):
                wait_until(
                    lambda: (
                        len(apns.pushes_to(push_c)) == 2 and not apns_jobs(database_url, push_c)
                    ),
                    seconds=60,
                    what="the push sent again after the lease ran out",
                )
            assert serials(device_c).json()["serialNumbers"] == [serial]
            http.close()
