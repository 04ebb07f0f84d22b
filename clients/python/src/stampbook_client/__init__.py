"""The Python SDK: a small, typed client for the Stamp API v1 (sync and async).

It speaks to Stampbook and, for the compatible verbs, to the hosted service
as well. Business refusals (HTTP 200 with a non-zero code) and protocol
errors both raise :class:`ApiError`, whose ``code`` is the envelope's code.

Writes are safe to retry: each write carries an ``Idempotency-Key`` (a fresh
UUID unless you pass your own), and a write that fails on the network, with
HTTP 429 or with a 5xx is retried with the *same* key, so the server applies
it at most once.

    from stampbook_client import StampClient

    with StampClient("http://127.0.0.1:8000", "sk_...") as stamps:
        card = stamps.create_card(cardNm="Americano", maxStamps=10)
        stamp = stamps.create(card, "2026-01-01", "2026-12-31", userNm="Kim")
        stamps.add(stamp)
        print(stamps.validate(stamp)["stamps"])
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

API_PATH = "/api/stamp/v1/"
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

__all__ = ["API_PATH", "ApiError", "AsyncStampClient", "StampClient"]


class ApiError(Exception):
    """A refusal or error answered by the server, with its envelope code."""

    def __init__(self, code: int, message: str, http_status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


@dataclass(frozen=True, slots=True)
class _Request:
    """One API call, built once and sent by either client."""

    method: str
    path: str
    json: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    write: bool = False
    idempotency_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def with_key(self) -> _Request:
        """This request with an Idempotency-Key (a new UUID unless one was given)."""
        if not self.write:
            return self
        key = self.idempotency_key or str(uuid.uuid4())
        return _Request(
            self.method,
            self.path,
            self.json,
            self.params,
            self.write,
            key,
            {**self.headers, "Idempotency-Key": key},
        )


def _result(response: httpx.Response) -> Any:
    """The envelope's result, or ApiError for any non-zero code."""
    try:
        body = response.json()
    except ValueError as exc:
        raise ApiError(-1, f"not a JSON envelope (HTTP {response.status_code})", 0) from exc
    if not isinstance(body, dict) or "code" not in body:
        raise ApiError(-1, f"not an envelope (HTTP {response.status_code})", response.status_code)
    if body["code"] != 0:
        raise ApiError(int(body["code"]), str(body.get("message", "")), response.status_code)
    return body.get("result")


def _attempts(request: _Request, max_retries: int) -> int:
    """Writes (which carry a key) and reads may be retried; nothing else."""
    return max_retries + 1 if request.write or request.method == "GET" else 1


def _retry_delay(response: httpx.Response | None, attempt: int, attempts: int) -> float | None:
    """Seconds to wait before the next attempt, or None to answer with ``response`` now.

    A transport error (``response`` None) on the last attempt is re-raised by the caller.
    """
    if response is not None and response.status_code not in RETRYABLE_STATUSES:
        return None
    if attempt + 1 >= attempts:
        return None
    retry_after = response.headers.get("retry-after", "") if response is not None else ""
    if retry_after.isdigit():
        return min(float(retry_after), 60.0)
    return min(0.2 * 2.0**attempt, 5.0)


def _strip_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


class _Verbs:
    """Builds the request of every verb; the clients send them."""

    @staticmethod
    def _create(card_idx: int, strt_ymd: str, end_ymd: str, fields: dict[str, Any]) -> _Request:
        body = {"cardIdx": card_idx, "strtYmd": strt_ymd, "endYmd": end_ymd, **fields}
        return _Request("POST", "create", json=body, write=True)

    @staticmethod
    def _stamp_write(verb: str, stamp_idx: int, key: str | None, **extra: Any) -> _Request:
        body = {"stampIdx": stamp_idx, **_strip_none(extra)}
        return _Request("PUT", verb, json=body, write=True, idempotency_key=key)

    @staticmethod
    def _list(path: str, params: dict[str, Any]) -> _Request:
        return _Request("GET", path, params=_strip_none(params))


class StampClient(_Verbs):
    """A synchronous client (httpx.Client underneath)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        language: str = "en",
        timeout: float = 10.0,
        max_retries: int = 2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.max_retries = max_retries
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + API_PATH,
            headers={
                "Authorization": f"APIKey {api_key}",
                "Accept-Language": language,
                "User-Agent": "stampbook-python",
            },
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> StampClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _send(self, request: _Request) -> Any:
        request = request.with_key()
        attempts = _attempts(request, self.max_retries)
        for attempt in range(attempts):
            response: httpx.Response | None = None
            try:
                response = self._http.request(
                    request.method,
                    request.path,
                    json=request.json,
                    params=request.params,
                    headers=request.headers,
                )
            except httpx.TransportError:
                if attempt + 1 >= attempts:
                    raise
            delay = _retry_delay(response, attempt, attempts)
            if delay is None and response is not None:
                return _result(response)
            time.sleep(delay or 0)
        raise AssertionError("unreachable")  # pragma: no cover

    # The compatible verbs.
    def create(self, card_idx: int, strt_ymd: str, end_ymd: str, **fields: Any) -> int:
        """Issue a stamp; returns its stampIdx."""
        return int(self._send(self._create(card_idx, strt_ymd, end_ymd, fields)))

    def add(self, stamp_idx: int, *, idempotency_key: str | None = None) -> None:
        """Add one stamp."""
        self._send(self._stamp_write("add", stamp_idx, idempotency_key))

    def remove(self, stamp_idx: int, *, idempotency_key: str | None = None) -> None:
        """Take one stamp back."""
        self._send(self._stamp_write("remove", stamp_idx, idempotency_key))

    def update(self, stamp_idx: int, **fields: Any) -> None:
        """Change only the given fields (wire names: stamps=, useYn=, memo=, …)."""
        self._send(_Request("PUT", "update", json={"stampIdx": stamp_idx, **fields}, write=True))

    def delete(self, stamp_idx: int) -> None:
        """Delete a stamp and its history."""
        self._send(_Request("DELETE", "delete", params={"stampIdx": stamp_idx}, write=True))

    def validate(self, stamp_idx: int) -> dict[str, Any]:
        """The stamp, if usable; ApiError with the reason otherwise."""
        return dict(self._send(_Request("GET", "validate", params={"stampIdx": stamp_idx})))

    def redeem(
        self, stamp_idx: int, *, onsite_pwd: str | None = None, idempotency_key: str | None = None
    ) -> None:
        """Redeem a complete card's reward."""
        self._send(self._stamp_write("redeem", stamp_idx, idempotency_key, onsitePwd=onsite_pwd))

    # Extensions.
    def list(self, **filters: Any) -> dict[str, Any]:
        """One page of stamps (cardIdx=, userId=, activeYn=, useYn=, limit=, cursor=)."""
        return dict(self._send(self._list("list", filters)))

    def iter_stamps(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every stamp matching the filters, following the cursors."""
        cursor = None
        while True:
            page = self.list(**filters, cursor=cursor)
            yield from page["items"]
            cursor = page["nextCursor"]
            if cursor is None:
                return

    def history(self, stamp_idx: int, **paging: Any) -> dict[str, Any]:
        """One page of a stamp's ledger, newest first."""
        return dict(self._send(self._list("history", {"stampIdx": stamp_idx, **paging})))

    def create_card(self, **fields: Any) -> int:
        """Define a card (cardNm=, maxStamps=, …); returns its cardIdx."""
        return int(self._send(_Request("POST", "card/create", json=fields, write=True)))

    def update_card(self, card_idx: int, **fields: Any) -> None:
        """Change only the given fields of a card."""
        body = {"cardIdx": card_idx, **fields}
        self._send(_Request("PUT", "card/update", json=body, write=True))

    def get_card(self, card_idx: int) -> dict[str, Any]:
        """One card."""
        return dict(self._send(_Request("GET", "card/get", params={"cardIdx": card_idx})))

    def list_cards(self, **paging: Any) -> dict[str, Any]:
        """One page of cards."""
        return dict(self._send(self._list("card/list", paging)))

    def delete_card(self, card_idx: int) -> None:
        """Delete a card that has no stamps."""
        self._send(_Request("DELETE", "card/delete", params={"cardIdx": card_idx}, write=True))


class AsyncStampClient(_Verbs):
    """An asynchronous client (httpx.AsyncClient underneath), same verbs as StampClient."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        language: str = "en",
        timeout: float = 10.0,
        max_retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.max_retries = max_retries
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + API_PATH,
            headers={
                "Authorization": f"APIKey {api_key}",
                "Accept-Language": language,
                "User-Agent": "stampbook-python",
            },
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncStampClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _send(self, request: _Request) -> Any:
        request = request.with_key()
        attempts = _attempts(request, self.max_retries)
        for attempt in range(attempts):
            response: httpx.Response | None = None
            try:
                response = await self._http.request(
                    request.method,
                    request.path,
                    json=request.json,
                    params=request.params,
                    headers=request.headers,
                )
            except httpx.TransportError:
                if attempt + 1 >= attempts:
                    raise
            delay = _retry_delay(response, attempt, attempts)
            if delay is None and response is not None:
                return _result(response)
            await asyncio.sleep(delay or 0)
        raise AssertionError("unreachable")  # pragma: no cover

    async def create(self, card_idx: int, strt_ymd: str, end_ymd: str, **fields: Any) -> int:
        """Issue a stamp; returns its stampIdx."""
        return int(await self._send(self._create(card_idx, strt_ymd, end_ymd, fields)))

    async def add(self, stamp_idx: int, *, idempotency_key: str | None = None) -> None:
        """Add one stamp."""
        await self._send(self._stamp_write("add", stamp_idx, idempotency_key))

    async def remove(self, stamp_idx: int, *, idempotency_key: str | None = None) -> None:
        """Take one stamp back."""
        await self._send(self._stamp_write("remove", stamp_idx, idempotency_key))

    async def update(self, stamp_idx: int, **fields: Any) -> None:
        """Change only the given fields."""
        body = {"stampIdx": stamp_idx, **fields}
        await self._send(_Request("PUT", "update", json=body, write=True))

    async def delete(self, stamp_idx: int) -> None:
        """Delete a stamp and its history."""
        await self._send(_Request("DELETE", "delete", params={"stampIdx": stamp_idx}, write=True))

    async def validate(self, stamp_idx: int) -> dict[str, Any]:
        """The stamp, if usable; ApiError with the reason otherwise."""
        return dict(await self._send(_Request("GET", "validate", params={"stampIdx": stamp_idx})))

    async def redeem(
        self, stamp_idx: int, *, onsite_pwd: str | None = None, idempotency_key: str | None = None
    ) -> None:
        """Redeem a complete card's reward."""
        await self._send(
            self._stamp_write("redeem", stamp_idx, idempotency_key, onsitePwd=onsite_pwd)
        )

    async def list(self, **filters: Any) -> dict[str, Any]:
        """One page of stamps."""
        return dict(await self._send(self._list("list", filters)))

    async def iter_stamps(self, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        """Every stamp matching the filters, following the cursors."""
        cursor = None
        while True:
            page = await self.list(**filters, cursor=cursor)
            for item in page["items"]:
                yield item
            cursor = page["nextCursor"]
            if cursor is None:
                return

    async def history(self, stamp_idx: int, **paging: Any) -> dict[str, Any]:
        """One page of a stamp's ledger, newest first."""
        return dict(await self._send(self._list("history", {"stampIdx": stamp_idx, **paging})))

    async def create_card(self, **fields: Any) -> int:
        """Define a card; returns its cardIdx."""
        return int(await self._send(_Request("POST", "card/create", json=fields, write=True)))

    async def update_card(self, card_idx: int, **fields: Any) -> None:
        """Change only the given fields of a card."""
        body = {"cardIdx": card_idx, **fields}
        await self._send(_Request("PUT", "card/update", json=body, write=True))

    async def get_card(self, card_idx: int) -> dict[str, Any]:
        """One card."""
        return dict(await self._send(_Request("GET", "card/get", params={"cardIdx": card_idx})))

    async def list_cards(self, **paging: Any) -> dict[str, Any]:
        """One page of cards."""
        return dict(await self._send(self._list("card/list", paging)))

    async def delete_card(self, card_idx: int) -> None:
        """Delete a card that has no stamps."""
        await self._send(
            _Request("DELETE", "card/delete", params={"cardIdx": card_idx}, write=True)
        )
