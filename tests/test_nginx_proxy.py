"""Behind a reverse proxy: Debian's nginx, running deploy/nginx/stampbook.conf as
committed (only its ports and file paths rewritten), with a throwaway
self-signed certificate, in front of a real ``stampbook serve``.

Client addresses are told apart on loopback by binding each client to an
address of its own in 127.0.0.0/8; nginx reaches the app from 127.0.0.1, the
one trusted proxy (STAMPBOOK_TRUSTED_PROXIES).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from stampbook.config import Settings
from stampbook.kit.errors import Code, message_for
from tests.conftest import POSTGRES_ADMIN_URL, new_key
from tests.servers import RealServer, free_port, real_server, scratch_database

CONFIG = Path(__file__).parent.parent / "deploy" / "nginx" / "stampbook.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
START_SECONDS = 20.0
API = "/api/stamp/v1/"
UNAUTHORIZED_LIMIT = 3

pytestmark = pytest.mark.slow


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A fresh key and a one-day certificate for 127.0.0.1 (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stamps.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("stamps.example.com"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def rendered_config(replacements: dict[str, str]) -> str:
    """The committed config with only its ports and paths replaced; each
    replaced text must be there, so an edit of the file cannot slip past."""
    text = CONFIG.read_text()
    for old, new in replacements.items():
        assert old in text, f"{CONFIG} no longer contains {old!r}"
        text = text.replace(old, new)
    return text


@dataclass(frozen=True)
class Stack:
    """nginx in front of a real server, and how to reach each."""

    server: RealServer
    public_url: str
    http_url: str
    cert: Path
    access_log: Path
    key: str

    def client(self, address: str, *, direct: bool = False) -> httpx.Client:
        """A client connecting from ``address`` (127.x.y.z) to nginx, or to the
        app itself when ``direct``."""
        verify = ssl.create_default_context(cafile=str(self.cert))
        transport = httpx.HTTPTransport(local_address=address, verify=verify)
        base = self.server.base_url if direct else self.public_url
        return httpx.Client(base_url=base, transport=transport, timeout=30)


@contextlib.contextmanager
def private_nginx(directory: Path, site: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run nginx in the foreground with ``site`` as its only site, its pid, logs
    and temporary files all in ``directory``; always stopped afterwards."""
    (directory / "stampbook.conf").write_text(site)
    user = "user root root;" if os.geteuid() == 0 else ""  # a worker that can read the tmp dir
    temp = (
        " ".join(
            f"{kind}_temp_path {directory / kind};" for kind in ("client_body", "proxy", "fastcgi")
        )
        + f" uwsgi_temp_path {directory / 'uwsgi'}; scgi_temp_path {directory / 'scgi'};"
    )
    (directory / "nginx.conf").write_text(
        f"""{user}
worker_processes 1;
daemon off;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} info;
events {{ worker_connections 128; }}
http {{
    {temp}
    include {directory / "stampbook.conf"};
}}
"""
    )
    command = [NGINX, "-p", str(directory), "-c", str(directory / "nginx.conf")]
    checked = subprocess.run(
        [*command, "-t", "-e", str(directory / "error.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(
        [*command, "-e", str(directory / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until something accepts on 127.0.0.1:``port``, or fail with nginx's log."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise AssertionError(f"nginx did not listen in {START_SECONDS}s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """nginx (TLS on a free port) in front of ``stampbook serve`` on SQLite."""
    assert Path(NGINX).is_file(), "Debian's nginx is required (make test installs it)"
    directory = tmp_path_factory.mktemp("nginx")
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / kind).mkdir()
    cert, key_file = self_signed_certificate(directory)
    tls_port, http_port = free_port(), free_port()
    public_url = f"https://127.0.0.1:{tls_port}"
    env = {
        "STAMPBOOK_PUBLIC_URL": public_url,
        "STAMPBOOK_TRUSTED_PROXIES": "127.0.0.1",
        "STAMPBOOK_UNAUTHORIZED_LIMIT": f"{UNAUTHORIZED_LIMIT}/minute",
    }
    with (
        scratch_database("sqlite", POSTGRES_ADMIN_URL) as url,
        real_server(url, workers=1, env=env) as server,
    ):
        app_port = urlsplit(server.base_url).port
        access_log = directory / "access.log"
        site = rendered_config(
            {
                "listen 80;": f"listen 127.0.0.1:{http_port};",
                "listen 443 ssl http2;": f"listen 127.0.0.1:{tls_port} ssl http2;",
                "server 127.0.0.1:8000;": f"server 127.0.0.1:{app_port};",
                "/etc/letsencrypt/live/stamps.example.com/fullchain.pem": str(cert),
                "/etc/letsencrypt/live/stamps.example.com/privkey.pem": str(key_file),
                "/var/log/nginx/stampbook.access.log": str(access_log),
            }
        )
        with private_nginx(directory, site) as nginx:
            wait_for_port(tls_port, nginx, directory / "error.log")
            api_key, _ = asyncio.run(new_key(url))
            yield Stack(
                server=server,
                public_url=public_url,
                http_url=f"http://127.0.0.1:{http_port}",
                cert=cert,
                access_log=access_log,
                key=api_key,
            )


def call(
    http: httpx.Client,
    method: str,
    path: str,
    key: str,
    *,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One API request with ``key``."""
    sent = {"Authorization": f"APIKey {key}", **(headers or {})}
    return http.request(method, API + path, headers=sent, **kwargs)


def test_stamp_urls_are_the_public_https_url_and_the_page_sets_secure_cookies(
    stack: Stack,
) -> None:
    with stack.client("127.0.0.1") as http:
        card = call(http, "POST", "card/create", stack.key, json={"cardNm": "Tea", "maxStamps": 5})
        today = datetime.date.today()
        span = {
            "strtYmd": today.isoformat(),
            "endYmd": (today + datetime.timedelta(days=9)).isoformat(),
        }
        created = call(
            http, "POST", "create", stack.key, json={"cardIdx": card.json()["result"], **span}
        )
        stamp = call(
            http, "GET", "validate", stack.key, params={"stampIdx": created.json()["result"]}
        )
        stamp_url = stamp.json()["result"]["stampUrl"]
        token = urlsplit(stamp_url).path.rsplit("/", 1)[1]
        assert stamp_url.startswith(f"{stack.public_url}/s/")
        # The customer's phone follows the link: through nginx, over TLS.
        page = http.get(stamp_url)
    assert page.status_code == 200
    cookies = page.headers.get_list("set-cookie")
    assert cookies and all("; secure" in cookie.lower() for cookie in cookies), cookies
    assert page.headers["strict-transport-security"].startswith("max-age=")
    # nginx's log names the page without its secret token. (nginx writes the
    # line after the answer has left, so wait for it.)
    deadline = time.monotonic() + 10
    while "/s/<redacted>" not in stack.access_log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    logged = stack.access_log.read_text()
    assert "/s/<redacted>" in logged and token not in logged


def test_plain_http_is_sent_to_https(stack: Stack) -> None:
    with httpx.Client(base_url=stack.http_url) as http:
        answer = http.get("/readyz?x=1")
    assert answer.status_code == 301
    assert answer.headers["location"] == "https://127.0.0.1/readyz?x=1"


def spend_the_budget(http: httpx.Client, **headers: str) -> None:
    """Refused keys up to the address's budget, then the one refused for it."""
    for _ in range(UNAUTHORIZED_LIMIT):
        assert call(http, "GET", "card/list", "sk_wrong", headers=headers).status_code == 401
    throttled = call(http, "GET", "card/list", "sk_wrong", headers=headers)
    assert (throttled.status_code, throttled.json()["code"]) == (429, 1201)


def test_through_the_trusted_proxy_each_client_has_its_own_budget(stack: Stack) -> None:
    with stack.client("127.0.0.2") as first:
        spend_the_budget(first)
    # Another client behind the same proxy still has its budget: the app counts
    # the address nginx forwarded, not nginx's own 127.0.0.1.
    with stack.client("127.0.0.3") as second:
        assert call(second, "GET", "card/list", "sk_wrong").status_code == 401
        assert call(second, "GET", "card/list", stack.key).status_code == 200
        # A client cannot borrow another's address through nginx either: nginx
        # replaces the X-Forwarded-For it was sent.
        forged = call(
            second, "GET", "card/list", "sk_wrong", headers={"X-Forwarded-For": "127.0.0.2"}
        )
        assert forged.status_code == 401


def test_a_direct_client_forging_x_forwarded_for_is_not_believed(stack: Stack) -> None:
    with stack.client("127.0.0.4", direct=True) as forger:
        spend_the_budget(forger, **{"X-Forwarded-For": "127.0.0.5"})
        # Another forged address changes nothing: the budget is the peer's own.
        other = call(
            forger, "GET", "card/list", "sk_wrong", headers={"X-Forwarded-For": "127.0.0.6"}
        )
        assert (other.status_code, other.json()["code"]) == (429, 1201)
    # The address the forger named never spent anything.
    with stack.client("127.0.0.5") as named:
        assert call(named, "GET", "card/list", "sk_wrong").status_code == 401


def body_of(size: int) -> bytes:
    """A JSON body of exactly ``size`` bytes (a long memo)."""
    frame = b'{"stampIdx":1,"memo":""}'
    return frame[:-2] + b"x" * (size - len(frame)) + frame[-2:]


@pytest.mark.parametrize("language", ["en", "ko"])
def test_a_body_over_the_cap_is_refused_by_nginx_with_the_apps_envelope(
    stack: Stack, language: str
) -> None:
    cap = Settings().max_body_bytes
    headers = {"Accept-Language": language, "Content-Type": "application/json"}
    with stack.client("127.0.0.1") as http:
        refused = call(http, "PUT", "update", stack.key, content=body_of(cap + 1), headers=headers)
        # The app answers the largest body it accepts (the memo is too long: 400).
        at_cap = call(http, "PUT", "update", stack.key, content=body_of(cap), headers=headers)
        direct = stack.client("127.0.0.1", direct=True)
        with direct:
            apps = call(
                direct, "PUT", "update", stack.key, content=body_of(cap + 1), headers=headers
            )
    assert refused.status_code == 413 == apps.status_code
    assert refused.headers["content-type"].startswith("application/json")
    assert json.loads(refused.content) == apps.json()
    assert refused.json() == {
        "code": 1005,
        "message": message_for(Code.BODY_TOO_LARGE, language),
        "result": None,
    }
    assert at_cap.status_code == 400 and at_cap.json()["code"] != 1005


def test_the_committed_config_agrees_with_the_servers_settings() -> None:
    """The numbers the config copies from Settings' defaults (docs/deploy.md)."""
    text = CONFIG.read_text()
    settings = Settings()

    upstream = text[text.index("upstream stampbook {") :].split("}", 1)[0]

    def seconds(directive: str, block: str = text) -> float:
        found = re.search(rf"^\s*{directive} (\d+)s;", block, re.MULTILINE)
        assert found, directive
        return float(found.group(1))

    cap = re.search(r"client_max_body_size (\d+)k;", text)
    assert cap and int(cap.group(1)) * 1024 == settings.max_body_bytes
    assert seconds("keepalive_timeout", upstream) < settings.keep_alive_seconds
    assert seconds("proxy_read_timeout") > settings.db_statement_timeout_seconds + 1
    assert seconds("proxy_read_timeout") > settings.sqlite_write_wait_seconds
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
