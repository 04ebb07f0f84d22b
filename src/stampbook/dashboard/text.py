"""The dashboard's words in English and Korean.

Refusals keep their messages in ``kit/errors.py`` (shown as they are); this
catalogue holds what the dashboard itself says. Every key exists in both
languages (a test checks it).
"""

from __future__ import annotations

from typing import Any

from stampbook.dashboard.text_en import EN
from stampbook.dashboard.text_ko import KO
from stampbook.dashboard.text_stats import EN as STATS_EN
from stampbook.dashboard.text_stats import KO as STATS_KO
from stampbook.kit.i18n import phrase
from stampbook.page.text import TEXT as PAGE_TEXT

# The dashboard's own words, over the stamp page's (the customer's card drawn
# in the dashboard, ``_card.html``, speaks the page's words).
TEXT: dict[str, dict[str, str]] = {
    "en": {**PAGE_TEXT["en"], **EN, **STATS_EN},
    "ko": {**PAGE_TEXT["ko"], **KO, **STATS_KO},
}


def text(lang: str, key: str, **values: Any) -> str:
    """The phrase ``key`` in ``lang`` (English when unknown), with ``{values}`` filled in."""
    return phrase(TEXT, lang, key, **values)
