"""`gateway scheduler` as real processes (two at once, on SQLite and PostgreSQL) with a fake
engine (``tests.support.fake_reconciler``): every due (rail, date) of the lookback is run once
between them, each run logs its verdict, and SIGTERM ends each with exit 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from gateway.clock import utcnow
from gateway.payments.rails import write_dev_rails
from gateway.reconciliation.schedule import load_schedules
from gateway.storage.migrate import upgrade

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

ROOT = Path(__file__).resolve().parents[3]
LOOKBACK = 3


def _due(rails: Path) -> set[tuple[str, str]]:
    now = utcnow()
    return {(name, d.isoformat()) for name, s in load_schedules(rails).items()
            for d in s.due_days(now, LOOKBACK)}


async def test_two_scheduler_processes_run_each_date_once_and_stop_on_sigterm(
        instance: Path, db_url: str, backoffice_token: str) -> None:
    await upgrade(db_url)
    rails = instance / "rails.toml"
    write_dev_rails(rails)
    ledger = instance / "ledger.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({"GATEWAY_DATABASE_URL": db_url,
                "GATEWAY_PARTNERS_FILE": str(instance / "partners.toml"),
                "GATEWAY_SIGNING_KEY_FILE": str(instance / "hub.jwk.json"),
                "GATEWAY_BACKOFFICE_TOKENS_FILE": str(instance / "backoffice.toml"),
                "GATEWAY_RAILS_FILE": str(rails), "FAKE_RECONCILER_LEDGER": str(ledger),
                "PYTHONPATH": str(ROOT)})
    before = _due(rails)
    logs = [instance / f"scheduler-{n}.log" for n in (1, 2)]
    procs = []
    for log in logs:
        with log.open("wb") as fh:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "tests.support.fake_reconciler", "scheduler",
                 "--every", "1", "--lookback-days", str(LOOKBACK), "--give-up-hours", "24"],
                env=env, cwd=instance, stdout=fh, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # bounded
            assert all(p.poll() is None for p in procs), [x.read_text() for x in logs]
            runs = ledger.read_text().splitlines() if ledger.exists() else []
            if len(runs) >= len(before) and all("scheduler started" in x.read_text()
                                                for x in logs):
                break
            time.sleep(0.1)
        time.sleep(2)  # two more ticks of each: nothing more may run
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=30) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    text = [x.read_text() for x in logs]
    assert codes == [0, 0], text
    runs = Counter(tuple(line.split()[:2]) for line in ledger.read_text().splitlines())
    assert set(runs) in (before, _due(rails)) and set(runs.values()) == {1}, runs
    verdicts = sum(t.count("verdict=balanced") for t in text)
    assert verdicts == sum(runs.values())
    assert all("reconciliation scheduler stopped" in t for t in text), text
    assert all("Traceback" not in t for t in text), text
    assert date.fromisoformat(min(d for _, d in runs)) < date.fromisoformat(max(d for _, d in runs))
