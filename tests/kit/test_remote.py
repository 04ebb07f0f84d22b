"""The client address every throttle is keyed by."""

from __future__ import annotations

from stampbook.kit.remote import UNKNOWN_ADDRESS, client_address


def test_the_socket_peer_is_the_client_address() -> None:
    assert client_address({"type": "http", "client": ("192.0.2.7", 5123)}) == "192.0.2.7"


def test_a_scope_without_a_peer_has_the_unknown_address() -> None:
    assert client_address({"type": "http", "client": None}) == UNKNOWN_ADDRESS
    assert client_address({"type": "http"}) == UNKNOWN_ADDRESS
