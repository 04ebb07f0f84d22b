"""Request bodies of the webhook endpoints API, named as on the wire."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictStr

from stampbook.kit.params import YN, HttpUrl, Idx, NotNull
from stampbook.kit.schemas import WireModel

# Spelled out for the type checker; a test checks it against outbox.EVENT_TYPES.
EventType = Literal[
    "stamp.created",
    "stamp.added",
    "stamp.removed",
    "stamp.updated",
    "stamp.completed",
    "stamp.used",
    "stamp.deleted",
    "stamp.suspicious",
]
EventFilter = Annotated[list[EventType], Field(min_length=1, max_length=8)]
MessageStatus = Literal["pending", "delivered", "failed"]
MsgId = Annotated[StrictStr, Field(min_length=1, max_length=64)]


class CreateWebhook(WireModel):
    """POST /webhook/create: ``cardIdx`` limits it to one card, ``events`` to some types."""

    url: HttpUrl
    cardIdx: Idx | None = None
    events: EventFilter | None = None


class UpdateWebhook(WireModel):
    """PUT /webhook/update: only the fields sent change; ``cardIdx`` or ``events``
    sent as null mean every card, every event."""

    webhookIdx: Idx
    url: Annotated[HttpUrl | None, NotNull] = None
    cardIdx: Idx | None = None
    events: EventFilter | None = None
    activeYn: Annotated[YN | None, NotNull] = None
    rotateSecretYn: Annotated[YN | None, NotNull] = None


class ReplayWebhook(WireModel):
    """POST /webhook/replay: one message (``msgId``), or every failed one of the endpoint."""

    webhookIdx: Idx
    msgId: MsgId | None = None
