"""The code table is published: docs/errors.md must say what the code does."""

from __future__ import annotations

from pathlib import Path

from stampbook.kit.errors import CODES, Code, markdown_table, message_for

DOC = Path(__file__).parents[2] / "docs" / "errors.md"


def test_docs_errors_md_carries_the_table_from_the_code() -> None:
    text = DOC.read_text()
    generated = text.split("<!-- generated:start -->\n", 1)[1].split("<!-- generated:end -->", 1)[0]
    assert generated == markdown_table(), (
        "run: python -m stampbook.kit.errors, paste into docs/errors.md"
    )


def test_every_code_has_a_status_and_messages_in_both_languages() -> None:
    assert set(CODES) == set(Code)
    for code, info in CODES.items():
        assert 200 <= info.http_status < 600
        if code is not Code.OK:
            assert info.en and info.ko, code


def test_business_refusals_are_http_200_and_protocol_errors_are_not() -> None:
    for code, info in CODES.items():
        if 2000 <= int(code) < 3000:
            assert info.http_status == 200, code
        elif int(code) >= 1000:
            assert info.http_status >= 400, code


def test_the_parameter_is_named_in_the_message() -> None:
    assert (
        message_for(Code.INVALID_PARAMETER, "en", param="stampIdx")
        == "Invalid parameter: stampIdx."
    )
    assert "stampIdx" in message_for(Code.INVALID_PARAMETER, "ko", param="stampIdx")
