"""deploy/systemd: every unit passes `systemd-analyze verify` without a warning, and its
sandbox scores a low exposure in `systemd-analyze security --offline`.

Both need an image root: the units, the distribution's own units (sysinit.target and the
rest) and an executable at the ExecStart path, here a stub script.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.deploytools import DEPLOY, require_tool

UNITS = DEPLOY / "systemd"
INSTANCES = ["px-gateway.service", "px-dispatcher@1.service", "px-scheduler.service",
             "px-migrate.service"]


def _image_root(tmp_path: Path, units: Path = UNITS) -> Path:
    root = tmp_path / "root"
    system = Path("/usr/lib/systemd/system")
    if not system.is_dir():
        system = Path("/lib/systemd/system")
    shutil.copytree(system, root / "usr/lib/systemd/system", symlinks=True)
    shutil.copytree(units, root / "etc/systemd/system")
    stub = root / "opt/px/.venv/bin/gateway"
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    return root


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    tool = require_tool("systemd-analyze", "systemd")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("unit", INSTANCES)
def test_unit_verifies_cleanly(tmp_path: Path, unit: str) -> None:
    root = _image_root(tmp_path)
    result = _analyze("verify", "--man=no", f"--root={root}", unit)
    # verify exits 0 on a misspelt key or a bad value and only warns: a warning is a failure.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@pytest.mark.parametrize("unit", INSTANCES[:3])
def test_long_running_units_are_sandboxed(tmp_path: Path, unit: str) -> None:
    root = _image_root(tmp_path)
    # Exposure 0-100 (shown as 0.0-10.0): these units score about 16; 20 leaves no room for
    # dropping a protection.
    result = _analyze("security", "--offline=yes", "--threshold=20", f"--root={root}", unit)
    assert result.returncode == 0, result.stdout[-3000:]
    text = (UNITS / unit.replace("@1", "@")).read_text()
    for line in ("ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
                 "DynamicUser=yes", "CapabilityBoundingSet=\n"):
        assert line in text, f"{unit} lacks {line.strip()}"


def test_a_misspelt_directive_is_caught(tmp_path: Path) -> None:
    """The check above can fail: a unit with a misspelt key."""
    broken = tmp_path / "units"
    shutil.copytree(UNITS, broken)
    unit = broken / "px-gateway.service"
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSytem=strict"))
    root = _image_root(tmp_path, broken)
    result = _analyze("verify", "--man=no", f"--root={root}", "px-gateway.service")
    assert "Unknown key" in result.stderr


def test_secrets_are_credentials_mapped_to_the_settings() -> None:
    """Each key file the gateway reads comes from $CREDENTIALS_DIRECTORY (%d)."""
    for unit in ("px-gateway.service", "px-dispatcher@.service", "px-scheduler.service",
                 "px-migrate.service"):
        text = (UNITS / unit).read_text()
        creds = dict(re.findall(r"(?m)^LoadCredential=([^:]+):(\S+)$", text))
        assert set(creds) == {"hub.jwk.json", "backoffice.toml", "rails.toml"}, unit
        for setting, name in (("GATEWAY_SIGNING_KEY_FILE", "hub.jwk.json"),
                              ("GATEWAY_BACKOFFICE_TOKENS_FILE", "backoffice.toml"),
                              ("GATEWAY_RAILS_FILE", "rails.toml")):
            assert f"Environment={setting}=%d/{name}\n" in text, (unit, setting)
