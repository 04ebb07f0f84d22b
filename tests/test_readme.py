"""The README's first five minutes stay true: its blocks marked ``sh
readme-test`` run as written, in order, in one shell, after what ``make run``
does (migrate ./stampbook.db, make the demo, serve), against a real server on
a fresh SQLite database. Only the server's address is changed (a free port
instead of 8000)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.servers import real_server

README = Path(__file__).parent.parent / "README.md"
README_URL = "http://127.0.0.1:8000"
_BLOCK = re.compile(r"^```sh readme-test\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def readme_script() -> str:
    """The tested blocks, in order."""
    blocks = _BLOCK.findall(README.read_text())
    assert len(blocks) >= 3, "the README lost its tested blocks"
    return "\n".join(blocks)


def envelopes(output: str) -> list[dict[str, Any]]:
    """Every API answer the commands printed."""
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"code"')]


def test_the_readme_blocks_name_the_server_make_run_starts() -> None:
    script = readme_script()
    assert README_URL in script and "source .venv/bin/activate" in script


@pytest.mark.slow
def test_the_first_five_minutes_of_the_readme_run_as_written(tmp_path: Path) -> None:
    # A user's checkout: the virtualenv `make run` made, and nothing else yet.
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    env = {name: value for name, value in os.environ.items() if not name.startswith("STAMPBOOK_")}
    stampbook = str(tmp_path / ".venv" / "bin" / "stampbook")
    for step in (["db", "upgrade"], ["demo"]):  # what `make run` does before serving
        subprocess.run([stampbook, *step], cwd=tmp_path, env=env, check=True, capture_output=True)

    with real_server(f"sqlite:///{tmp_path / 'stampbook.db'}", workers=1) as server:
        script = readme_script().replace(README_URL, server.base_url)
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr + server.log()

    answers = envelopes(done.stdout)
    assert [answer["code"] for answer in answers] == [0, 0, 0], done.stdout
    _added, validated, history = answers
    assert validated["result"]["stamps"] == 1 and validated["result"]["cardNm"] == "Americano"
    steps = [(item["action"], item["source"]) for item in history["result"]["items"]]
    assert steps == [("ADD", "CLI"), ("ADD", "API"), ("CREATE", "API")]
    assert "2 / 10" in done.stdout
    assert "1 stamps written to my-shop.csv" in done.stdout
    assert "0 new, 1 already here, 0 refused" in done.stdout
