"""`gateway demo` end to end: a real process, every simulator on loopback, exit 0, in time."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.support.processes import GATEWAY

pytestmark = pytest.mark.e2e


def test_demo_runs_and_every_invariant_holds(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run([*GATEWAY, "demo"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=90, stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - started
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-4000:]
    assert elapsed < 60, f"the demo took {elapsed:.1f}s"
    assert "All invariants held" in out and "FAILED" not in out
    for phase in ("claims (claim.notify)", "claim.status received",
                  "document.request / deliver", "decisions (claim.status)",
                  "payouts over both rails", "payment.notice + claim.status paid",
                  "death.notify stops the pension", "invariants and evidence chain"):
        assert f"[ok] {phase}" in out, phase
    for heading in ("\nClaims\n", "\nMessages (hub <-> partners)\n", "\nPayments\n"):
        assert heading in out
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
