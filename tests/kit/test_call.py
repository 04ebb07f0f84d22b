"""A route's ``Depends(authenticate)`` trusts only the intake's admission: the key
check lives in one place (stampbook.auth, run by the intake middleware), and a
route the intake did not cover is refused instead of checked a second way."""

from __future__ import annotations

import httpx
from fastapi import Depends, FastAPI
from starlette.responses import Response

from stampbook.kit.call import Call, authenticate
from tests.conftest import Api


async def test_a_route_outside_the_intakes_prefix_is_refused_even_with_a_good_key(
    app: FastAPI, client: httpx.AsyncClient, api: Api
) -> None:
    @app.get("/elsewhere")
    async def elsewhere(call: Call = Depends(authenticate)) -> Response:
        return await call.read(lambda _conn, _ctx: _none())

    response = await client.get("/elsewhere", headers=api.headers)

    assert (response.status_code, response.json()["code"]) == (401, 1101)
    assert await api.code("GET", "card/list") == 0  # the same key, through the intake


async def _none() -> None:
    return None
