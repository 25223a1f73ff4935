"""`gateway demo` end to end: a real process, every simulator on loopback, exit 0."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.processes import GATEWAY

pytestmark = pytest.mark.e2e


def test_demo_ends_with_a_short_summary_and_what_to_try_next(tmp_path: Path) -> None:
    done = subprocess.run([*GATEWAY, "demo"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=90, stdin=subprocess.DEVNULL)
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-4000:]
    tail = out[out.index("\nSummary\n"):]
    assert "All invariants held" in tail and "FAILED" not in out
    lines = tail.splitlines()
    assert len(lines) <= 16, tail  # short: a screen's worth, not the tables
    assert "  claims     10 from 5 partners in 4 wire formats: 9 paid, 1 rejected" in tail
    assert "  payments   11 paid once each (iso20022 7, merchantrade 4), 1 cancelled" in tail
    assert "every delivery and payout recovered" in tail
    assert "records in the hash chain, verified" in tail
    assert "\nTry next\n" in tail and "gateway demo --verbose" in tail
    assert "gateway serve --with-simulators" in tail
    # the tables are behind --verbose
    for heading in ("\nClaims\n", "\nMessages (hub <-> partners)\n", "\nPayments\n"):
        assert heading not in out
    assert not any(line.startswith("  DEMO-") for line in out.splitlines())


def test_demo_verbose_runs_and_every_invariant_holds(tmp_path: Path) -> None:
    done = subprocess.run([*GATEWAY, "demo", "--verbose"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=90, stdin=subprocess.DEVNULL)
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-4000:]
    assert "All invariants held" in out and "FAILED" not in out
    for phase in ("claims (claim.notify)", "claim.status received",
                  "document.request / deliver", "decisions (claim.status)",
                  "payouts over both rails", "payment.notice + claim.status paid",
                  "death.notify stops the pension", "invariants and evidence chain"):
        assert f"[ok] {phase}" in out, phase
    for heading in ("\nClaims\n", "\nMessages (hub <-> partners)\n", "\nPayments\n"):
        assert heading in out
    assert out.index("\nPayments\n") < out.index("\nSummary\n") < out.index("\nTry next\n")
    lines = out.splitlines()
    claims = [line for line in lines if line.startswith("  DEMO-")]
    assert len(claims) == 10
    assert {line.split()[1] for line in claims} == {
        "ID-BPJSTK", "MM-SSB", "NP-FEB", "PK-MOPHRD", "BD-WEWB"}
    assert sum("received > approved > paid" in line for line in claims) == 9
    assert any(line.startswith("  DEMO-BD-2") and "rejected" in line for line in claims)
    paid = [line for line in lines if line.startswith("  PAY-DEMO-")]
    assert len(paid) == 9 and all(" paid " in line for line in paid)
    assert {"merchantrade", "iso20022"} <= {line.split()[2] for line in paid}
    pension = [line for line in lines if line.startswith("  PEN-PK-0001.")]
    assert [line.split()[5] for line in pension] == ["paid", "paid", "cancelled"]
    assert " document.deliver " in out and " death.notify " in out and " acknowledged" in out
    assert list(tmp_path.iterdir()) == []  # its files lived in a temporary folder, now gone
