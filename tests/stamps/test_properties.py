"""Property: whatever the sequence of writes and retries, the count is the ledger.

Hypothesis drives random sequences of add, remove, update (count, memo,
useYn) and redeem on one stamp, some under an Idempotency-Key, retried and
reused at random. A model predicts every answer; after each step the stamp's
count must equal the model, lie within 0..maxStamps, and equal the sum of its
ledger, whose length grows by exactly one per accepted write (never for a
replay or a refusal).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from stampbook.app import create_app
from stampbook.config import Settings
from stampbook.kit.clock import FrozenClock
from tests.conftest import Api, new_key

pytestmark = pytest.mark.slow

MAX_STAMPS = 4
OPS = ("add", "remove", "set", "memo", "redeem", "unredeem")


@dataclass(frozen=True)
class Step:
    """One write: its verb and argument, the key it carries, and extra retries."""

    op: str
    arg: int
    key: str | int | None  # None: no key; "new": a fresh key; int: reuse an earlier one
    retries: int


steps = st.builds(
    Step,
    op=st.sampled_from(OPS),
    arg=st.integers(min_value=0, max_value=MAX_STAMPS + 1),
    key=st.one_of(st.none(), st.just("new"), st.integers(min_value=0, max_value=5)),
    retries=st.integers(min_value=0, max_value=2),
)


@dataclass
class Model:
    """What the stamp should be, and what each key has answered."""

    count: int = 0
    used: bool = False
    writes: int = 1  # the CREATE event
    answers: dict[str, tuple[tuple[str, str, str], bytes]] = field(default_factory=dict)

    def expect(self, op: str, arg: int) -> int:
        """The code the rules give for ``op``, applying it to the model when accepted."""
        if op == "add":
            code = 2005 if self.used else 2006 if self.count >= MAX_STAMPS else 0
            self.count += code == 0
        elif op == "remove":
            code = 2005 if self.used else 2007 if self.count == 0 else 0
            self.count -= code == 0
        elif op == "set":
            code = 2006 if arg > MAX_STAMPS else 0
            self.count = arg if code == 0 else self.count
        elif op == "redeem":
            code = 2005 if self.used else 2008 if self.count < MAX_STAMPS else 0
            self.used = self.used or code == 0
        else:  # memo, unredeem: always accepted
            code = 0
            self.used = self.used and op != "unredeem"
        self.writes += code == 0
        return code


def request_for(op: str, arg: int, stamp_idx: int) -> tuple[str, str, dict[str, Any]]:
    """The HTTP request of a step."""
    if op in ("add", "remove", "redeem"):
        return "PUT", op, {"stampIdx": stamp_idx}
    body: dict[str, Any] = {"stampIdx": stamp_idx}
    if op == "set":
        body["stamps"] = arg
    elif op == "memo":
        body["memo"] = f"note {arg}"
    else:
        body["useYn"] = "N"
    return "PUT", "update", body


async def play(api: Api, script: list[Step]) -> None:
    """Run one sequence on a fresh stamp, checking every answer and the invariants."""
    card_idx = await api.card(maxStamps=MAX_STAMPS)
    stamp_idx = await api.stamp(card_idx)
    model = Model()
    keys: list[str] = []
    for step in script:
        method, path, body = request_for(step.op, step.arg, stamp_idx)
        identity = (method, path, repr(sorted(body.items())))
        if step.key is None:
            key = None
        elif step.key == "new" or not keys:
            key = f"prop-{uuid.uuid4().hex}"
            keys.append(key)
        else:
            key = keys[int(step.key) % len(keys)]
        headers = {"Idempotency-Key": key} if key else {}

        for attempt in range(1 + (step.retries if key else 0)):
            response = await api.call(method, path, json=body, headers=headers)
            stored = model.answers.get(key) if key else None
            if stored is None:
                assert attempt == 0
                assert (response.status_code, response.json()["code"]) == (
                    200,
                    model.expect(step.op, step.arg),
                ), (step, response.text)
                assert "Idempotent-Replayed" not in response.headers
                if key:
                    model.answers[key] = (identity, response.content)
            elif stored[0] == identity:
                assert response.content == stored[1], (step, response.text)
                assert response.headers["Idempotent-Replayed"] == "true"
            else:
                assert (response.status_code, response.json()["code"]) == (422, 1301)
        await check_invariants(api, card_idx, stamp_idx, model)


async def check_invariants(api: Api, card_idx: int, stamp_idx: int, model: Model) -> None:
    """Count = model, within 0..max, = sum of the ledger; one event per accepted write."""
    page = await api.ok("GET", "list", params={"cardIdx": card_idx})
    (item,) = page["items"]
    history = await api.history(stamp_idx)
    assert item["stamps"] == model.count
    assert 0 <= item["stamps"] <= MAX_STAMPS
    assert sum(e["stampsAfter"] - e["stampsBefore"] for e in history) == item["stamps"]
    assert history[0]["stampsAfter"] == item["stamps"]
    assert len(history) == model.writes


def test_the_count_always_equals_the_sum_of_the_ledger(database_url: str) -> None:
    settings = Settings(
        database_url=database_url,
        public_url="https://stamps.example.test",
        rate_limit="off",
        dispatcher_enabled=False,
    )
    application = create_app(settings)
    lifespan = application.router.lifespan_context(application)
    # Hypothesis calls a plain function per example; one event loop serves them all.
    with asyncio.Runner() as runner:
        runner.run(lifespan.__aenter__())
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application, raise_app_exceptions=False),
            base_url="http://testserver",
        )
        try:
            key, account_idx = runner.run(new_key(database_url))
            api = Api(http, key, account_idx, FrozenClock(datetime.now(UTC)))

            # No shrinking: each example is dozens of requests, and Hypothesis would
            # shrink for up to five minutes; a failing script of <= 20 steps reads well.
            @hypothesis_settings(
                max_examples=30,
                deadline=None,
                derandomize=True,
                phases=(Phase.explicit, Phase.reuse, Phase.generate),
            )
            @given(script=st.lists(steps, min_size=1, max_size=20))
            def sequences(script: list[Step]) -> None:
                runner.run(play(api, script))

            sequences()
        finally:
            runner.run(http.aclose())
            runner.run(lifespan.__aexit__(None, None, None))
