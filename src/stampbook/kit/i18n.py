"""Language negotiation: English and Korean, from ``Accept-Language``."""

from __future__ import annotations

from typing import Any

SUPPORTED = ("en", "ko")
DEFAULT = "en"
# Each language named in itself, for the language switch of every page.
LANGUAGE_NAMES = {"en": "English", "ko": "한국어"}


def negotiate(accept_language: str | None) -> str:
    """Pick ``en`` or ``ko`` from an Accept-Language header, honouring q-values."""
    if not accept_language:
        return DEFAULT
    best, best_q = DEFAULT, -1.0
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in SUPPORTED:
            continue
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        # Earlier entries win ties, as the header lists preferences in order.
        score = quality - position * 1e-6
        if score > best_q:
            best, best_q = primary, score
    return best


def phrase(catalogue: dict[str, dict[str, str]], lang: str, key: str, **values: Any) -> str:
    """The phrase ``key`` of a page's ``catalogue`` in ``lang`` (English when
    unknown), with ``{values}`` filled in."""
    phrases = catalogue.get(lang) or catalogue[DEFAULT]
    template = phrases.get(key) or catalogue[DEFAULT][key]
    return template.format(**values) if values else template


def pick_language(query: str | None, cookie: str | None, negotiated: str) -> str:
    """A page's language: an explicit ``?lang=``, then the remembered choice, then
    what ``Accept-Language`` asks for."""
    for choice in (query, cookie):
        if choice is not None and choice in SUPPORTED:
            return choice
    return negotiated
