"""The dashboard's pages, assembled: ``PAGES`` lists every module with a
``router``; the app mounts them in this order (``routers()``). A new section
adds its module here and its entry to ``nav.SECTIONS``."""

from __future__ import annotations

from types import ModuleType

from fastapi import APIRouter, Request
from starlette.responses import Response

from stampbook.dashboard import (
    card_pages,
    customers_pages,
    overview_pages,
    owner_pages,
    signin_pages,
    stamp_actions,
    stamp_pages,
    till_pages,
    webhook_pages,
)
from stampbook.dashboard.web import PREFIX, DashRoute, NotFound, static_files

PAGES: list[ModuleType] = [
    signin_pages,
    overview_pages,
    customers_pages,
    stamp_pages,
    stamp_actions,
    card_pages,
    owner_pages,
    webhook_pages,
    till_pages,
]

_fallback = APIRouter(route_class=DashRoute, include_in_schema=False)


@_fallback.api_route(
    f"{PREFIX}/{{rest:path}}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
)
async def anything_else(request: Request, rest: str) -> Response:
    """Every other address under /dashboard/ is the dashboard's 404 page."""
    raise NotFound


def routers() -> list[APIRouter]:
    """Every dashboard router, the catch-all 404 last."""
    return [module.router for module in PAGES] + [_fallback]


__all__ = ["routers", "static_files"]
