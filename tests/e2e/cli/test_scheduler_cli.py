"""`gateway scheduler` refuses bad options and a bad rails file with one line and exit 2,
before it touches the database (the real entry point, as a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

RAILS = '[rails.merchantrade]\nbase_url = "http://127.0.0.1:1"\napi_key_id = "k"\n' \
        'hmac_secret = "s"\ncallback_secret = "c"\n'


def _scheduler(folder: Path, *args: str, rails: str = RAILS) -> subprocess.CompletedProcess[str]:
    (folder / "rails.toml").write_text(rails)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({"GATEWAY_DATABASE_URL": f"sqlite:///{folder}/gateway.db",
                "GATEWAY_RAILS_FILE": str(folder / "rails.toml")})
    # A scheduler that wrongly starts is stopped by the timeout, which fails the test.
    return subprocess.run([sys.executable, "-m", "gateway.cli", "scheduler", *args], env=env,
                          cwd=folder, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("args", "rails", "expected"), [
    (["--every", "0"], RAILS, "--every 0 must be between 1 and 3600"),
    (["--lookback-days", "1"], RAILS, "--lookback-days 1 must be between 2 and 62"),
    (["--give-up-hours", "200"], RAILS, "--give-up-hours 200 must end within --lookback-days 7"),
    (["--retry-first", "90"], RAILS, "the first retry wait must be > 0 and at most the ceiling"),
    ([], RAILS + 'cutoff = "25:00"\n', "rails.merchantrade.cutoff: '25:00' is not a time HH:MM"),
    ([], RAILS + 'statement_days = "weekly"\n', "rails.merchantrade.statement_days"),
    ([], "", "no rails to reconcile"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], rails: str,
                                          expected: str) -> None:
    result = _scheduler(tmp_path, *args, rails=rails)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("gateway: ") and expected in lines[0], lines[0]
    assert not (tmp_path / "gateway.db").exists()  # refused before touching the database
