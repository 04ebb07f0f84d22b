"""Every file the docs and the code name exists in this repository: a renamed or
removed module leaves no stale pointer behind (docs/*.md, the READMEs, comments
and docstrings in src/, tests/ and bench/)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([*ROOT.glob("docs/*.md"), ROOT / "README.md", ROOT / "bench" / "README.md"])
CODE = sorted(
    path
    for folder in ("src", "tests", "bench")
    for path in (ROOT / folder).rglob("*.py")
    if "egg-info" not in str(path)
)
# A file name with one of the repository's own extensions, optionally with folders.
REFERENCE = re.compile(
    r"(?<![\w./-])((?:[\w.-]+/)*[\w-]+\.(?:py|md|toml|html|css|svg|mako|ini|cfg|ya?ml))(?![\w/(])"
)
# Named as absent on purpose (migrate.py builds its config without one).
NOT_FILES = {"alembic.ini"}
# Where a relative name may be rooted: the repository, the package, the tests.
BASES = (ROOT, ROOT / "src", ROOT / "src" / "stampbook", ROOT / "tests")


def _exists(reference: str, source: Path) -> bool:
    if reference in NOT_FILES:
        return True
    if any((base / reference).exists() for base in (*BASES, source.parent)):
        return True
    # A bare file name ("schema.py", "test_intake.py") names a file somewhere
    # in the tree.
    return "/" not in reference and any(
        any((ROOT / folder).rglob(reference)) for folder in ("src", "tests", "docs", "bench")
    )


def _references(path: Path, *, code: bool) -> list[tuple[int, str]]:
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for match in REFERENCE.finditer(line):
            reference = match.group(1)
            # In code, a dotted name with a known suffix is usually an attribute
            # (``page.html``), so only paths with a folder or a doc are read as files.
            if code and "/" not in reference and not reference.endswith(".md"):
                continue
            found.append((number, reference))
    return found


@pytest.mark.parametrize("path", [*DOCS, *CODE], ids=lambda path: str(path.relative_to(ROOT)))
def test_every_file_named_exists(path: Path) -> None:
    code = path.suffix == ".py"
    missing = [
        f"line {number}: {reference}"
        for number, reference in _references(path, code=code)
        if not _exists(reference, path)
    ]
    assert not missing, f"{path.relative_to(ROOT)} names files that do not exist: {missing}"
