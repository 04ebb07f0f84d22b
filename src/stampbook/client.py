"""Compatibility name of the Python SDK, which is now its own distribution.

The SDK lives in ``clients/python`` as ``stampbook-client`` (import name
``stampbook_client``, httpx its only dependency), so that a POS or shop backend
can install it without the server. The server depends on it, and this module
re-exports it so that code written against ``stampbook.client`` keeps working;
new code should import ``stampbook_client``.
"""

from __future__ import annotations

from stampbook_client import API_PATH, ApiError, AsyncStampClient, StampClient

__all__ = ["API_PATH", "ApiError", "AsyncStampClient", "StampClient"]
