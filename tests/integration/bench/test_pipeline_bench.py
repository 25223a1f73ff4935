"""``python -m bench.pipeline --rate`` at a tiny size, so the benchmark cannot rot.

PostgreSQL only (the benchmark runs the production layout: separate serve and dispatch
processes on one PostgreSQL). A few seconds of open-loop load at a rate this machine carries
easily: every accepted claim is processed and answered, and the report carries the paced
load, the capacity figure and the backlog trend. No timing is asserted.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.databases import pg_admin_url, pg_reachable

pytestmark = pytest.mark.postgresql

ROOT = Path(__file__).resolve().parents[3]


def test_a_paced_run_is_processed_delivered_and_drained() -> None:
    url, required = pg_admin_url()
    problem = asyncio.run(pg_reachable(url))
    if problem is not None:
        if required:
            pytest.fail(f"PostgreSQL is required here but not reachable at {url}: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {url} ({problem})")
    env = dict(os.environ, GATEWAY_TEST_PG_URL=url)
    out = subprocess.run(
        [sys.executable, "-m", "bench.pipeline", "--seconds", "4", "--rate", "5",
         "--calibrate", "0", "--drain", "60", "--dispatchers", "1", "--workers", "1",
         "--concurrency", "2"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    text = out.stdout
    assert "open-loop at 5 claims/s" in text
    accepted = int(re.search(r"accepted/s\s+\d+\s+\((\d+) in", text).group(1))  # type: ignore[union-attr]
    # 4 s at 5/s is 20 claims due; every one is accepted at a rate this low.
    assert accepted == 20, text
    assert re.search(r"capacity: a dispatcher spends [\d.]+x intake's CPU", text), text
    assert "backlog trend over the second half" in text
    drained = re.search(r"drain without load: backlog \d+ -> (\d+)", text)
    assert drained is not None and drained.group(1) == "0", text
