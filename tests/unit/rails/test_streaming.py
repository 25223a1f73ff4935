"""Statements are read in constant memory: the peak while scanning 100,000 lines is within a
generous factor of the peak at 10,000 (memory, not time: no timing is asserted).

The settlement CSV is measured with ``tracemalloc`` (all of its memory is Python's). camt is
read by libxml2, whose allocations ``tracemalloc`` cannot see, so each size is scanned in a
fresh interpreter and its peak resident set compared: a tree that kept its entries would hold
hundreds of megabytes at 100,000 lines.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from adapters.rails._statements import GeneratedPayout
from adapters.rails.iso20022 import statements as camt_statements
from adapters.rails.iso20022.camt import scan_camt
from adapters.rails.merchantrade import statements as csv_statements
from adapters.rails.merchantrade.settlement import scan_settlement
from gateway.money import Money
from gateway.ports.rail import StatementLine, StatementProof

DAY = date(2026, 3, 2)


class Payouts:
    """N payouts, generated afresh on each iteration (the generators read them once or twice)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self) -> Iterator[GeneratedPayout]:
        for i in range(self.n):
            yield GeneratedPayout(f"PAY-{i:08d}", Money(1000 + i % 5000, "MYR"), DAY)


def _csv_peak(path: Path) -> tuple[int, int]:
    tracemalloc.start()
    try:
        with path.open("rb") as source:
            lines = sum(1 for item in scan_settlement(source) if isinstance(item, StatementLine))
        return lines, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_settlement_csv_scan_peak_does_not_grow_with_size(tmp_path: Path) -> None:
    peaks = {}
    for n in (10_000, 100_000):
        path = tmp_path / f"settlement-{n}.csv"
        with path.open("wb") as out:
            assert csv_statements.write_statement(out, Payouts(n), DAY) == n
        lines, peaks[n] = _csv_peak(path)
        assert lines == n
    assert peaks[100_000] < 2 * peaks[10_000] + 64 * 1024, peaks


_SCAN = """
import resource, sys
from adapters.rails.iso20022.camt import scan_camt
from gateway.ports.rail import StatementLine, StatementProof
with open(sys.argv[1], "rb") as source:
    items = 0
    for item in scan_camt(source):
        items += isinstance(item, StatementLine)
        if isinstance(item, StatementProof) and not item.ok:
            raise SystemExit(item.detail)
print(items, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in kilobytes is Linux's")
def test_camt_scan_peak_does_not_grow_with_size(tmp_path: Path) -> None:
    peaks = {}
    for n in (10_000, 100_000):
        path = tmp_path / f"camt053-{n}.xml"
        with path.open("wb") as out:
            assert camt_statements.write_statement(out, Payouts(n), DAY) == n
        done = subprocess.run([sys.executable, "-c", _SCAN, str(path)], capture_output=True,
                              text=True, timeout=300, check=True)
        lines, peaks[n] = (int(v) for v in done.stdout.split())
        assert lines == n
    assert peaks[100_000] < 1.5 * peaks[10_000], peaks  # kilobytes


def test_generators_write_what_the_scanners_prove() -> None:
    payouts = Payouts(25)
    out = io.BytesIO()
    camt_statements.write_statement(out, payouts, DAY)
    out.seek(0)
    items = list(scan_camt(out))
    assert [(p.check, p.ok) for p in items if isinstance(p, StatementProof)] == [
        ("balance", True), ("structure", True)]
    assert [x.end_to_end_id for x in items if isinstance(x, StatementLine)] == [
        f"PAY-{i:08d}" for i in range(25)]
    with pytest.raises(TypeError):
        camt_statements.write_statement(io.BytesIO(), iter(list(payouts)), DAY)
