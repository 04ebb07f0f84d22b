"""docs/sdk.md runs as written: every ``python`` block of the page, each as a
script of its own (a user's copy and paste), against a real ``stampbook serve``
with a fresh key in ``STAMPBOOK_API_KEY``."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import new_key
from tests.servers import real_server

SDK_DOC = Path(__file__).parent.parent / "docs" / "sdk.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)

pytestmark = pytest.mark.slow


def python_blocks() -> list[str]:
    """The page's python blocks, in order."""
    return PYTHON_BLOCK.findall(SDK_DOC.read_text())


def test_the_page_has_the_sync_and_the_async_example() -> None:
    blocks = python_blocks()
    assert len(blocks) == 2
    assert "StampClient(" in blocks[0]
    assert "AsyncStampClient(" in blocks[1]
    # The SDK's own import name; the compatibility name is not taught.
    assert all("from stampbook_client import" in block for block in blocks)


def test_every_python_block_of_the_sdk_page_runs_against_a_real_server(
    database_url: str,
) -> None:
    key, _ = asyncio.run(new_key(database_url))
    with real_server(database_url, workers=1) as server:
        env = {**os.environ, "STAMPBOOK_URL": server.base_url, "STAMPBOOK_API_KEY": key}
        outputs = []
        for block in python_blocks():
            ran = subprocess.run(
                [sys.executable, "-c", block],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert ran.returncode == 0, f"{block}\n--- stderr:\n{ran.stderr}"
            outputs.append(ran.stdout.splitlines())
    sync, async_ = outputs
    # The redeem of a card with one stamp of ten is refused with its code and message.
    assert sync[0] == "2008 The stamp card is not complete yet."
    assert re.fullmatch(r"\d+ 1", sync[1]) and len(sync) == 2
    # Three concurrent adds all count, and the redeem follows them in the ledger.
    assert async_ == ["3", "['USE', 'ADD', 'ADD', 'ADD', 'CREATE']"]
