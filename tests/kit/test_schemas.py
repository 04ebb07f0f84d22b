"""The base of every request body: unknown fields refused, unstorable text refused
naming its field, and only the fields sent counted in a fingerprint."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.schemas import WireModel, storable_text


class Greeting(WireModel):
    """A body of two fields, one optional."""

    text: str
    memo: str | None = None


def test_storable_text_refuses_nul_and_lone_surrogates() -> None:
    assert storable_text("카페 ☕ café")
    assert not storable_text("a\x00b")
    assert not storable_text("\ud800")


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError) as refused:
        Greeting.model_validate({"text": "hi", "extra": 1})
    assert [(e["type"], e["loc"]) for e in refused.value.errors()] == [
        ("extra_forbidden", ("extra",))
    ]


def test_only_sent_fields_are_fingerprinted() -> None:
    assert Greeting.model_validate({"text": "hi"}).sent() == {"text": "hi"}


@pytest.mark.parametrize("value", ["a\x00b", "\udfff"])
def test_unstorable_text_is_1001_naming_the_field(value: str) -> None:
    with pytest.raises(StampbookError) as refused:
        Greeting.model_validate({"text": "hi", "memo": value})
    assert refused.value.code == Code.INVALID_PARAMETER
    assert refused.value.param == "memo"
