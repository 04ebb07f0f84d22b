"""Accept-Language picks English or Korean."""

from __future__ import annotations

import pytest

from stampbook.kit.i18n import negotiate


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("ko", "ko"),
        ("ko-KR,ko;q=0.9,en-US;q=0.8", "ko"),
        ("en-US,en;q=0.9,ko;q=0.8", "en"),
        ("fr-FR,ko;q=0.5", "ko"),
        ("fr, de", "en"),
        ("en;q=0.1, ko;q=0.2", "ko"),
        ("ko;q=bad, en", "en"),
    ],
)
def test_the_language_is_the_most_preferred_supported_one(
    header: str | None, language: str
) -> None:
    assert negotiate(header) == language
