"""``python -m bench.reconcile`` at a tiny size, so the benchmark cannot rot.

PostgreSQL only: the benchmark measures the engine on PostgreSQL (COPY, the issue's target);
SQLite has nothing to measure here. No timing is asserted, only that the three measurements
of both rails ran over every line and the report has its ratios.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.databases import pg_admin_url, pg_reachable

pytestmark = pytest.mark.postgresql

ROOT = Path(__file__).resolve().parents[3]


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    url, required = pg_admin_url()
    problem = asyncio.run(pg_reachable(url))
    if problem is not None:
        if required:
            pytest.fail(f"PostgreSQL is required here but not reachable at {url}: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {url} ({problem})")
    env = dict(os.environ, GATEWAY_BENCH_PG_URL=url)
    return subprocess.run([sys.executable, "-m", "bench.reconcile", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_both_rails_run_floor_move_and_engine_over_every_line() -> None:
    out = _bench("--lines", "30,60")
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line.split() for line in out.stdout.splitlines()
            if line.startswith(("merchantrade ", "iso20022 "))]
    assert [(r[0], r[1]) for r in rows] == [("merchantrade", "30"), ("merchantrade", "60"),
                                            ("iso20022", "30"), ("iso20022", "60")]
    assert "engine peak RSS at 60 / at 30 lines" in out.stdout
    assert "run/floor:" in out.stdout and "the floor and the move alone:" in out.stdout
    assert "move ceiling: the move's own statements alone allow" in out.stdout


def test_bad_arguments_are_one_line_and_non_zero() -> None:
    out = subprocess.run([sys.executable, "-m", "bench.reconcile", "--rails", "swift"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0 and "--rails" in out.stderr
