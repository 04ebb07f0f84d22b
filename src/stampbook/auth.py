"""API keys -> a typed principal: the check every API request passes before
its body is read.

It sits above the feature rooms (it looks keys up through the accounts room)
and beside ``app``, which hands ``admit`` to the kit's intake middleware; the
principal it makes is the kit's plain ``Principal``, so routes and services
never import this module (the import-linter contract in pyproject.toml says so).
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import Scope

from stampbook.accounts.service import principal_for_key
from stampbook.kit.call import Principal, admitted
from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.remote import client_address
from stampbook.kit.runtime import Runtime

AUTH_SCHEME = "apikey"
MAX_KEY_LENGTH = 200
# Past this many cached keys the cache starts over, so a stream of unknown
# keys cannot grow a worker's memory without bound.
MAX_CACHED_KEYS = 10_000


async def admit(scope: Scope, authorization: str) -> Principal:
    """Check an API request's key from its ``Authorization`` header alone, before
    anything reads its body, and count it against the rate limits.

    A missing, malformed, unknown or revoked key is 1101 (HTTP 401), counted
    against the client address's budget of refused keys; an address over that
    budget is 1201 (HTTP 429) for every request until its window ends, without
    a key lookup. The principal and the RateLimit headers are left in the
    scope's state (``kit.call.admitted``), where ``authenticate`` and the
    headers middleware find them.
    """
    runtime: Runtime = scope["app"].state.runtime
    limiter = runtime.limiter
    address = client_address(scope)
    blocked = limiter.blocked_refusal(address)
    if blocked is not None:
        raise blocked
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    principal = None
    if scheme.lower() == AUTH_SCHEME and key and len(key) <= MAX_KEY_LENGTH:
        principal = await _lookup(runtime, key)
    if principal is None:
        await limiter.hit_unauthorized(address)
        raise StampbookError(Code.UNAUTHORIZED)
    assert principal.key_idx is not None
    headers = await limiter.hit(key_idx=principal.key_idx, account_limit=principal.rate_limit)
    admitted(scope, principal, headers)
    return principal


async def _lookup(runtime: Runtime, key: str) -> Principal | None:
    """The key's principal, through the per-worker cache
    (``STAMPBOOK_AUTH_CACHE_SECONDS``; 0 looks every request up)."""
    ttl = runtime.settings.auth_cache_seconds
    if ttl <= 0:
        return await principal_for_key(runtime.db, key=key)
    cached = runtime.key_cache.get(key)
    if cached and cached[0] > time.monotonic():
        principal: Principal | None = cached[1]
        return principal
    # One lookup per key at a time: when an entry expires under load, every
    # request in flight would otherwise query the database at once.
    pending = runtime.key_lookups.get(key)
    if pending is None:
        pending = asyncio.ensure_future(principal_for_key(runtime.db, key=key))
        runtime.key_lookups[key] = pending
        pending.add_done_callback(lambda _: runtime.key_lookups.pop(key, None))
    principal = await asyncio.shield(pending)
    if len(runtime.key_cache) > MAX_CACHED_KEYS:
        runtime.key_cache.clear()
    runtime.key_cache[key] = (time.monotonic() + ttl, principal)
    return principal
