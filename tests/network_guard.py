"""The suite talks only to loopback: every other outbound connection is refused.

Names other than ``localhost`` do not resolve (``socket.getaddrinfo`` answers
"no such name" without asking a DNS server), so no test depends on, or
sends a query to, the outside world; a test that needs a name to resolve
patches the resolver itself. An audit hook (PEP 578) sees every
``socket.connect`` and ``sendto`` this test process makes, whichever library
makes it (the dispatcher's httpx, a database driver, a stray client). An IP
destination outside 127.0.0.0/8 and ::1 is refused before any packet leaves,
as a connection refusal, and recorded; the suite's autouse fixture fails a
test that caused one, unless the test says it expected it (``take``).
Servers the suite starts in other processes are started with their
dispatcher off (tests/servers.py).
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from typing import Any

_lock = threading.Lock()
_blocked: list[str] = []
_installed = False


class OutboundBlocked(ConnectionRefusedError):
    """A test tried to reach an address that is not loopback."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # a name: the caller did not resolve it, so we cannot tell


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        return
    sock, address = args[0], args[-1]
    if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
        return
    if not isinstance(address, tuple) or not address:
        return
    host = str(address[0])
    if _is_loopback(host):
        return
    with _lock:
        _blocked.append(f"{host}:{address[1] if len(address) > 1 else '?'}")
    raise OutboundBlocked(f"tests talk only to loopback; {host} was refused")


_real_getaddrinfo = socket.getaddrinfo


def _local_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    if name is None or _is_loopback(str(name)) or _is_literal(str(name)):
        return _real_getaddrinfo(host, *args, **kwargs)
    raise socket.gaierror(socket.EAI_NONAME, f"{name}: tests resolve no names but localhost")


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def install() -> None:
    """Install the hook and the resolver once per process (audit hooks cannot
    be removed)."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        socket.getaddrinfo = _local_getaddrinfo
        _installed = True


def take() -> list[str]:
    """The destinations refused since the last call, as ``host:port``; clears them."""
    with _lock:
        taken = list(_blocked)
        _blocked.clear()
    return taken
