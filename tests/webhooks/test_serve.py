"""``stampbook serve`` runs the dispatcher beside the API unless it is switched off."""

from __future__ import annotations

import asyncio

import httpx

from stampbook.app import create_app
from stampbook.config import Settings
from stampbook.jobs import background_jobs
from stampbook.kit.clock import FrozenClock
from stampbook.webhooks.dispatcher import dispatch_forever
from tests.conftest import Api
from tests.webhooks.conftest import Hooks, Receiver


def test_the_dispatcher_is_a_background_job_unless_disabled(settings: Settings) -> None:
    enabled = settings.model_copy(update={"dispatcher_enabled": True})
    disabled = settings.model_copy(update={"dispatcher_enabled": False})
    assert dispatch_forever in background_jobs(enabled)
    assert dispatch_forever not in background_jobs(disabled)


async def test_a_served_app_delivers_on_its_own(
    settings: Settings, clock: FrozenClock, api: Api, receiver: Receiver
) -> None:
    served = create_app(
        settings.model_copy(update={"dispatcher_enabled": True}), clock=clock, background=True
    )
    async with served.router.lifespan_context(served):
        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            own = Api(http, api.key, api.account_idx, clock)
            hooks = Hooks(own)
            try:
                await hooks.listen(receiver)
                stamp_idx = await own.stamp()
                assert await asyncio.to_thread(receiver.arrived.wait, 10)
                (request,) = receiver.requests()
                assert request.signature_ok
                assert request.json["data"]["stampIdx"] == stamp_idx
            finally:
                await hooks.remove_all()
