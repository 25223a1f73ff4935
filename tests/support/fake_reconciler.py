"""``python -m tests.support.fake_reconciler scheduler ...``: the real ``gateway`` command with
the reconciliation engine replaced by a fake that records its runs in a file
(``FAKE_RECONCILER_LEDGER``), one line per run: ``rail date pid``. For end-to-end tests of
``gateway scheduler`` as a process (signals, several instances) before, or without, a real
engine's statements.
"""

from __future__ import annotations

import asyncio
import os
from datetime import date
from pathlib import Path

import gateway.composition
from gateway.cli import main


class LedgerReconciler:
    """``run`` appends to the ledger after a short, bounded pause (so instances overlap);
    ``done`` reads it. The scheduler calls both under the (rail, date) lock."""

    def __init__(self, ledger: Path) -> None:
        self.ledger = ledger

    async def done(self, rail: str, day: date) -> bool:
        if not self.ledger.exists():
            return False
        return any(line.split()[:2] == [rail, day.isoformat()]
                   for line in self.ledger.read_text().splitlines())

    async def run(self, rail: str, day: date, *, final: bool = False) -> str:
        await asyncio.sleep(0.05)
        with self.ledger.open("a") as fh:
            fh.write(f"{rail} {day.isoformat()} {os.getpid()}\n")
        return "balanced"


if __name__ == "__main__":
    ledger = Path(os.environ["FAKE_RECONCILER_LEDGER"])
    gateway.composition.reconciler_for = lambda hub: LedgerReconciler(ledger)  # type: ignore[assignment]
    main()
