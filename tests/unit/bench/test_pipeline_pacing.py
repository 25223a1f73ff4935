"""bench.pipeline's open-loop schedule, backlog trend and ``--rate`` parsing (pure logic)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.pipeline import backlog_trend, due_at

ROOT = Path(__file__).resolve().parents[3]


def test_open_loop_schedule_spaces_claims_by_the_rate() -> None:
    assert [due_at(100.0, i, 4.0) for i in range(5)] == [100.0, 100.25, 100.5, 100.75, 101.0]


def test_closed_loop_sends_every_claim_at_once() -> None:
    assert {due_at(100.0, i, None) for i in range(1000)} == {100.0}


def test_backlog_trend_reads_the_second_half_only() -> None:
    # Steady at 50 for the first half, then growing by 3 tasks/s: the trend is the growth.
    samples = [(float(t), 50) for t in range(0, 30, 10)] + [
        (float(t), 50 + 3 * (t - 30)) for t in range(30, 70, 10)]
    assert backlog_trend(samples) == pytest.approx(3.0)


def test_a_falling_or_flat_backlog_has_no_growth() -> None:
    assert backlog_trend([(10.0, 900), (20.0, 600), (30.0, 300), (40.0, 0)]) < 0
    assert backlog_trend([(10.0, 7), (20.0, 7), (30.0, 7)]) == 0.0
    assert backlog_trend([]) == 0.0
    assert backlog_trend([(10.0, 5)]) == 0.0


@pytest.mark.parametrize("rate", ["0", "-5", "fast", "1e9"])
def test_a_bad_rate_is_one_line_and_exit_2(rate: str) -> None:
    out = subprocess.run([sys.executable, "-m", "bench.pipeline", "--rate", rate], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2
    assert "--rate" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""
