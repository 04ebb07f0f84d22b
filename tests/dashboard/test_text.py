"""The dashboard speaks English and Korean: every phrase exists in both."""

from __future__ import annotations

import re
from pathlib import Path

from stampbook.dashboard.text_en import EN
from stampbook.dashboard.text_ko import KO

TEMPLATES = Path(__file__).parents[2] / "src" / "stampbook" / "dashboard" / "templates"


def test_every_phrase_exists_in_english_and_korean() -> None:
    assert set(EN) == set(KO)
    for key in EN:
        assert EN[key] and KO[key], key
        # The same placeholders, in whatever order each language needs them.
        assert sorted(re.findall(r"{(\w+)}", EN[key])) == sorted(re.findall(r"{(\w+)}", KO[key])), (
            key
        )


def test_every_phrase_a_template_names_is_in_the_catalogue() -> None:
    from stampbook.dashboard.text import TEXT

    for template in TEMPLATES.glob("*.html"):
        for key in re.findall(r"""\bt\(\s*["']([a-z_0-9]+)["'](?!\s*~)""", template.read_text()):
            assert key in TEXT["en"] and key in TEXT["ko"], (template.name, key)
