"""deploy/systemd: the units pass systemd's own check, start commands the CLI
accepts, and the settings file names only settings that exist, with valid values.
(deploy/nginx is run for real by tests/test_nginx_proxy.py.)"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stampbook.config import Settings

DEPLOY = Path(__file__).parent.parent / "deploy" / "systemd"
UNITS = ["stampbook.service", "stampbook-worker.service"]
INSTALLED_BIN = "/opt/stampbook/.venv/bin/stampbook"
STAMPBOOK_BIN = Path(sys.executable).parent / "stampbook"


def exec_start(unit: str) -> list[str]:
    """The ExecStart command of ``unit``, split as systemd splits it."""
    lines = [
        line for line in (DEPLOY / unit).read_text().splitlines() if line.startswith("ExecStart=")
    ]
    assert len(lines) == 1
    return shlex.split(lines[0].removeprefix("ExecStart="))


@pytest.mark.parametrize("unit", UNITS)
def test_the_unit_passes_systemd_analyze_verify(unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is required (make test installs it)"
    # Only the installation path changes: this checkout's stampbook stands in for it.
    text = (DEPLOY / unit).read_text()
    assert INSTALLED_BIN in text
    (tmp_path / unit).write_text(text.replace(INSTALLED_BIN, str(STAMPBOOK_BIN)))
    checked = subprocess.run(
        [analyze, "verify", str(tmp_path / unit)], capture_output=True, text=True, check=False
    )
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


@pytest.mark.parametrize("unit", UNITS)
def test_the_unit_starts_a_command_the_cli_accepts(unit: str) -> None:
    command = exec_start(unit)
    assert command[0] == INSTALLED_BIN
    # Click reads every option before it answers --help: a misspelt one fails here.
    accepted = subprocess.run(
        [str(STAMPBOOK_BIN), *command[1:], "--help"], capture_output=True, text=True, check=False
    )
    assert accepted.returncode == 0, accepted.stderr


def test_the_settings_file_names_real_settings_with_valid_values() -> None:
    values = {}
    for line in (DEPLOY / "stampbook.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            assert name.startswith("STAMPBOOK_"), name
            values[name.removeprefix("STAMPBOOK_").lower()] = value
    assert set(values) <= set(Settings.model_fields), set(values) - set(Settings.model_fields)
    settings = Settings(**values)  # type: ignore[arg-type]
    assert settings.public_url.startswith("https://")
    assert settings.trusted_proxies == "127.0.0.1"
    assert settings.max_body_bytes == Settings().max_body_bytes
