"""Language negotiation: English and Korean, from ``Accept-Language``."""

from __future__ import annotations

SUPPORTED = ("en", "ko")
DEFAULT = "en"


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
