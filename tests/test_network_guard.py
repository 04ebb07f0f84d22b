"""The suite's own guard: tests can reach loopback and nothing else."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from tests import network_guard
from tests.network_guard import OutboundBlocked


def test_a_connection_beyond_loopback_is_refused_before_it_leaves() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(OutboundBlocked):
        sock.connect(("192.0.2.1", 80))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(OutboundBlocked):
        sock.sendto(b"?", ("198.51.100.1", 53))
    assert network_guard.take() == ["192.0.2.1:80", "198.51.100.1:53"]


async def test_an_http_client_cannot_reach_a_public_address_and_loopback_still_works() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("http://203.0.113.1:8080/")
    assert network_guard.take() == ["203.0.113.1:8080"]

    server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
    assert network_guard.take() == []


def test_names_other_than_localhost_do_not_resolve() -> None:
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("example.com", 443)
    assert socket.getaddrinfo("localhost", 80)
