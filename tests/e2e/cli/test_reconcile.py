"""``gateway reconcile`` as the operator runs it (a process): the printed summary, the report
files, and the exit status of each verdict (0 balanced, 1 discrepancies, 3 incomplete) and of
bad input (2, one line)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.backoffice.auth import write_dev_tokens
from gateway.payments.rails import write_dev_rails
from gateway.storage.engine import create_engine
from gateway.storage.uow import factory_for
from tests.support.recon import add_payment, bad, line, record, statement

pytestmark = pytest.mark.e2e


def _run(folder: Path, db_url: str, *args: str,
         module: str = "tests.support.recon_cli") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({"GATEWAY_DATABASE_URL": db_url,
                "GATEWAY_PARTNERS_FILE": str(folder / "partners.toml"),
                "GATEWAY_SIGNING_KEY_FILE": str(folder / "hub.jwk.json"),
                "GATEWAY_BACKOFFICE_TOKENS_FILE": str(folder / "backoffice.toml"),
                "GATEWAY_RAILS_FILE": str(folder / "rails.toml"),
                "PYTHONPATH": str(Path(__file__).resolve().parents[3])})
    return subprocess.run([sys.executable, "-m", module, *args], env=env, cwd=folder,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def folder(instance: Path) -> Path:
    write_dev_tokens(instance / "backoffice.toml")
    write_dev_rails(instance / "rails.toml")
    with (instance / "rails.toml").open("a") as f:
        f.write('\n[rails.fake]\nadapter = "scripted"\nsettlement_days = 1\ncutoff = "17:00"\n'
                'holiday_subdivision = "KUL"\n')
    return instance


def _pay(db_url: str, *ids: str, paid_at: datetime | None = None) -> None:
    async def go() -> None:
        engine = create_engine(db_url)
        try:
            for pid in ids:
                await add_payment(factory_for(engine), pid, **(
                    {"paid_at": paid_at} if paid_at else {}))
        finally:
            await engine.dispose()
    asyncio.run(go())


def test_each_verdict_has_its_exit_status(folder: Path, db_url: str) -> None:
    _pay(db_url, "P-1", "P-2")
    good = folder / "good.jsonl"
    good.write_bytes(statement([record(), line(1, e2e="P-1"), line(2, e2e="P-2")]))
    out = folder / "report"
    r = _run(folder, db_url, "reconcile", "--rail", "fake", "--date", "2026-12-01",
             "--statement", str(good), "--report-dir", str(out))
    assert r.returncode == 0, r.stderr
    assert "verdict BALANCED" in r.stdout
    assert "MYR: 200.00 - 200.00 = 0.00 + 0.00\n" in r.stdout and "<--" not in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"] == "balanced" and summary["counts"] == {"matched": 2}
    first = (out / "items.csv").read_bytes()
    again = _run(folder, db_url, "reconcile", "--rail", "fake", "--date", "2026-12-01",
                 "--statement", str(good), "--report-dir", str(out))
    assert again.returncode == 0 and again.stdout == r.stdout
    assert (out / "items.csv").read_bytes() == first

    _pay(db_url, "P-3")
    off = folder / "off.jsonl"
    off.write_bytes(statement([record(day="2026-12-02"), line(1, "99.00", e2e="P-3",
                                                              day="2026-12-02")]))
    r = _run(folder, db_url, "reconcile", "--rail", "fake", "--date", "2026-12-02",
             "--statement", str(off))
    assert r.returncode == 1, r.stderr
    assert "amount_mismatch" in r.stdout and "<-- residual" in r.stdout

    broken = folder / "broken.jsonl"
    broken.write_bytes(statement([record(day="2026-12-03"), bad(1)]))
    r = _run(folder, db_url, "reconcile", "--rail", "fake", "--date", "2026-12-03",
             "--statement", str(broken))
    assert r.returncode == 3, r.stderr
    assert "verdict INCOMPLETE" in r.stdout and "quarantined" in r.stdout


@pytest.mark.parametrize("args, expected", [
    (["--rail", "nope", "--date", "2026-12-01"], "--rail: 'nope' is not in the rails file"),
    (["--rail", "fake", "--date", "2026-02-30"], "--date: '2026-02-30' is not a date"),
    (["--rail", "fake", "--date", "2026-12-01", "--statement", "absent.jsonl"],
     "--statement: absent.jsonl is not a readable file"),
    (["--rail", "fake", "--date", "2026-12-01", "--statement", "partners.toml"],
     "not a scripted statement"),
    (["--rail", "fake", "--date", "20261201"], "--date: '20261201' is not a date"),
    (["--rail", "fake", "--date", "2026-W49-2"], "--date: '2026-W49-2' is not a date"),
    (["--rail", "fake", "--date", "2026-12-01", "--report-dir", ""],
     "--report-dir: an empty path is no folder"),
    (["--rail", "fake", "--date", "2026-12-01", "--statement", "two\nlines.jsonl"],
     "--statement: two\\nlines.jsonl is not a readable file"),
    (["--rail", "fake", "--date", "2026-12-01", "--statement", "day1.jsonl", "--report-dir",
      "taken"], "--report-dir: taken is not a folder the report can be written to "
     "(summary.json in it is not a file)"),
    (["--rail", "fake", "--date", "9999-12-31"], "business date 9999-12-31 has not begun"),
    (["--rail", "fake", "--date", "2026-12-01", "--statement", "day2.jsonl"],
     "the statement is of 2026-12-02, not of the business date 2026-12-01 (statement S1)"),
], ids=["unknown-rail", "bad-date", "unreadable", "not-a-statement", "basic-format",
        "week-date", "empty-report-dir", "newline-in-path", "summary-is-a-folder", "not-yet",
        "another-day"])
def test_bad_input_is_one_line_and_exit_2(folder: Path, db_url: str, args: list[str],
                                          expected: str) -> None:
    (folder / "day2.jsonl").write_bytes(statement([record(day="2026-12-02")]))
    (folder / "day1.jsonl").write_bytes(statement([record()]))
    (folder / "taken" / "summary.json").mkdir(parents=True)
    r = _run(folder, db_url, "reconcile", *args)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and lines[0].startswith("gateway: ") and expected in lines[0], lines
    assert "Traceback" not in r.stderr
    assert not (folder / "summary.json").exists()  # nothing ran, nothing was written
    assert list((folder / "taken").iterdir()) == [folder / "taken" / "summary.json"]


@pytest.mark.parametrize("where, why", [("partners.toml", "it is a file"),
                                        ("partners.toml/report", "Not a directory")],
                         ids=["a-file", "under-a-file"])
def test_a_report_folder_that_cannot_be_written_is_bad_input(folder: Path, db_url: str,
                                                             where: str, why: str) -> None:
    """Refused before the run starts, naming the option, not blamed on the database; the
    same run then goes through with a folder that can be written."""
    _pay(db_url, "P-1")
    good = folder / "good.jsonl"
    good.write_bytes(statement([record(), line(1, e2e="P-1")]))
    args = ["reconcile", "--rail", "fake", "--date", "2026-12-01", "--statement", str(good)]
    r = _run(folder, db_url, *args, "--report-dir", where)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0] == (f"gateway: --report-dir: {where} is not a folder the report can be "
                        f"written to ({why})"), lines
    ok = _run(folder, db_url, *args, "--report-dir", "report")
    assert ok.returncode == 0, ok.stderr
    assert json.loads((folder / "report" / "summary.json").read_text())["counts"] == {
        "matched": 1}


def test_without_a_file_the_statement_is_fetched_from_the_rail(folder: Path,
                                                               db_url: str) -> None:
    _pay(db_url, "P-1", paid_at=datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    served = folder / "served"
    served.mkdir()
    (served / "2026-12-01.jsonl").write_bytes(statement([record(), line(1, e2e="P-1")]))
    with (folder / "rails.toml").open("a") as f:
        f.write(f'statements_dir = "{served}"\n')
    r = _run(folder, db_url, "reconcile", "--rail", "fake", "--date", "2026-12-01")
    assert r.returncode == 0, r.stderr
    late = _run(folder, db_url, "reconcile", "--rail", "fake", "--date", "2026-12-02")
    assert late.returncode == 2 and "not available yet" in late.stderr
