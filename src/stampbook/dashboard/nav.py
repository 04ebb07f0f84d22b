"""The dashboard's sections, in the order of its navigation: the phrase naming
each, its address and whether only owners may open it. The pages themselves
are the modules ``routes.PAGES`` lists; a section added there is added here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Section:
    """One entry of the navigation."""

    key: str
    path: str
    owner_only: bool = False


SECTIONS = (
    Section("nav_overview", "/dashboard/overview", owner_only=False),
    Section("nav_customers", "/dashboard/customers"),
    Section("nav_till", "/dashboard/till"),
    Section("nav_cards", "/dashboard/cards", owner_only=True),
    Section("nav_export", "/dashboard/export", owner_only=True),
    Section("nav_keys", "/dashboard/keys", owner_only=True),
    Section("nav_webhooks", "/dashboard/webhooks", owner_only=True),
    Section("nav_users", "/dashboard/users", owner_only=True),
    Section("nav_settings", "/dashboard/settings", owner_only=True),
)


def sections_for(is_owner: bool) -> list[Section]:
    """The sections a user of this role sees."""
    return [section for section in SECTIONS if is_owner or not section.owner_only]
