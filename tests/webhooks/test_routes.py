"""The webhook endpoints API: same envelope, codes and conventions as the stamp API."""

from __future__ import annotations

import base64

from tests.conftest import Api
from tests.webhooks.conftest import Hooks

URL = "http://127.0.0.1:9/hooks"


async def test_create_returns_the_id_and_a_secret_shown_only_once(api: Api, hooks: Hooks) -> None:
    response = await api.call("POST", "webhook/create", json={"url": URL})
    body = response.json()

    assert response.status_code == 200 and body["code"] == 0
    assert list(body["result"]) == ["webhookIdx", "secret"]
    secret = body["result"]["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 24
    listed = await hooks.endpoint(body["result"]["webhookIdx"])
    assert listed == {
        "webhookIdx": body["result"]["webhookIdx"],
        "url": URL,
        "cardIdx": None,
        "events": None,
        "activeYn": "Y",
        "disabledReason": None,
        "regYmdt": listed["regYmdt"],
    }
    assert secret not in (await api.call("GET", "webhook/list")).text


async def test_create_checks_its_card_and_its_event_names(api: Api, other_api: Api) -> None:
    foreign_card = await other_api.card()
    assert await api.code("POST", "webhook/create", json={"url": URL, "cardIdx": foreign_card}) == (
        2101
    )
    for events in (["stamp.exploded"], [], "stamp.added"):
        response = await api.call("POST", "webhook/create", json={"url": URL, "events": events})
        assert response.status_code == 400, events
        assert response.json()["code"] == 1001 and "events" in response.json()["message"]
    response = await api.call("POST", "webhook/create", json={"url": "ftp://example.com/x"})
    assert response.status_code == 400 and response.json()["code"] == 1001
    assert (await api.call("POST", "webhook/create", json={})).json()["code"] == 1001


async def test_update_changes_only_what_is_sent(api: Api, hooks: Hooks) -> None:
    card_idx = await api.card()
    webhook_idx, secret = await hooks.create(URL, cardIdx=card_idx, events=["stamp.added"])

    result = await api.ok(
        "PUT",
        "webhook/update",
        json={"webhookIdx": webhook_idx, "url": URL + "/v2", "events": ["stamp.used"]},
    )
    assert result is None
    endpoint = await hooks.endpoint(webhook_idx)
    assert (endpoint["url"], endpoint["cardIdx"], endpoint["events"]) == (
        URL + "/v2",
        card_idx,
        ["stamp.used"],
    )

    await api.ok(
        "PUT", "webhook/update", json={"webhookIdx": webhook_idx, "cardIdx": None, "events": None}
    )
    endpoint = await hooks.endpoint(webhook_idx)
    assert (endpoint["cardIdx"], endpoint["events"], endpoint["url"]) == (None, None, URL + "/v2")

    rotated = await api.ok(
        "PUT", "webhook/update", json={"webhookIdx": webhook_idx, "rotateSecretYn": "Y"}
    )
    assert rotated["webhookIdx"] == webhook_idx and rotated["secret"] != secret
    response = await api.call(
        "PUT", "webhook/update", json={"webhookIdx": webhook_idx, "url": None}
    )
    assert response.json()["code"] == 1001


async def test_an_unknown_or_foreign_endpoint_is_2201(
    api: Api, other_api: Api, hooks: Hooks
) -> None:
    webhook_idx, _ = await hooks.create(URL)

    for caller, idx in ((other_api, webhook_idx), (api, 10**12)):
        assert await caller.code("PUT", "webhook/update", json={"webhookIdx": idx}) == 2201
        assert await caller.code("GET", "webhook/deliveries", params={"webhookIdx": idx}) == 2201
        assert await caller.code("POST", "webhook/replay", json={"webhookIdx": idx}) == 2201
        assert await caller.code("DELETE", "webhook/delete", params={"webhookIdx": idx}) == 2201
    assert (await other_api.ok("GET", "webhook/list"))["items"] == []

    await api.ok("DELETE", "webhook/delete", params={"webhookIdx": webhook_idx})
    assert await api.code("DELETE", "webhook/delete", params={"webhookIdx": webhook_idx}) == 2201


async def test_replay_of_an_unknown_message_is_2203(api: Api, hooks: Hooks) -> None:
    webhook_idx, _ = await hooks.create(URL)
    await api.stamp()
    other_idx, _ = await hooks.create(URL)
    (message,) = await hooks.log(webhook_idx)

    for msg_id in ("msg_nope", message["msgId"]):
        code = await api.code(
            "POST", "webhook/replay", json={"webhookIdx": other_idx, "msgId": msg_id}
        )
        assert code == 2203


async def test_list_and_deliveries_are_cursor_pages(api: Api, hooks: Hooks) -> None:
    first, _ = await hooks.create(URL)
    second, _ = await hooks.create(URL)
    page = await api.ok("GET", "webhook/list", params={"limit": 1})
    assert [item["webhookIdx"] for item in page["items"]] == [second]
    page = await api.ok("GET", "webhook/list", params={"limit": 1, "cursor": page["nextCursor"]})
    assert [item["webhookIdx"] for item in page["items"]] == [first]
    assert page["nextCursor"] is None

    stamp_idx = await api.stamp()
    await api.add(stamp_idx)
    await api.add(stamp_idx)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"webhookIdx": first, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await api.ok("GET", "webhook/deliveries", params=params)
        seen.extend(item["eventType"] for item in page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == ["stamp.added", "stamp.added", "stamp.created"]
    pending = await api.ok(
        "GET", "webhook/deliveries", params={"webhookIdx": first, "status": "pending"}
    )
    assert len(pending["items"]) == 3
    failed = await api.ok(
        "GET", "webhook/deliveries", params={"webhookIdx": first, "status": "failed"}
    )
    assert failed == {"items": [], "nextCursor": None}
    for bad in ({"status": "lost"}, {"limit": 0}, {"limit": 101}, {"cursor": "garbage!"}):
        params = {"webhookIdx": first, **bad}
        assert await api.code("GET", "webhook/deliveries", params=params) == 1001


async def test_create_is_idempotent_under_an_idempotency_key(api: Api, hooks: Hooks) -> None:
    headers = {"Idempotency-Key": "hook-1"}
    first = await api.call("POST", "webhook/create", json={"url": URL}, headers=headers)
    again = await api.call("POST", "webhook/create", json={"url": URL}, headers=headers)

    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len((await api.ok("GET", "webhook/list"))["items"]) == 1


async def test_the_api_key_is_required(api: Api) -> None:
    response = await api.http.get("/api/stamp/v1/webhook/list")
    assert response.status_code == 401 and response.json()["code"] == 1101
