"""Statement parse benchmark: each rail's ``scan_statement`` against a bare streaming parse of
the same file, in the same run.

    .venv/bin/python -m bench.camt_scan                  # 100,000 lines of each rail
    .venv/bin/python -m bench.camt_scan --n 1000000 --rails iso20022

The statements are the generators' (``adapters.rails.<name>.statements.write_statement``: one
booked payout per line), written to a temporary file first (not timed). Each figure is the best
of ``--repeat`` reads of the whole file, in wall-clock and in CPU seconds of this process (the
steadier one on a machine shared with other work). The bare parse is the least a streaming
reader can do: camt, ``lxml.etree.iterparse`` with the same hardening, ``Ntry`` end events only,
each entry cleared with its preceding siblings and nothing read from it; CSV, ``csv.reader``
over the same text wrapper, every row counted and nothing read from it. ``ratio`` is scan
lines/s over bare lines/s.
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

from lxml import etree

from adapters.rails._statements import GeneratedPayout
from adapters.rails.iso20022 import statements as camt_statements
from adapters.rails.iso20022.camt import scan_camt
from adapters.rails.merchantrade import statements as csv_statements
from adapters.rails.merchantrade.settlement import scan_settlement
from gateway.money import Money
from gateway.ports.rail import StatementLine

DAY = date(2025, 1, 31)
_HARDENED = {"resolve_entities": False, "no_network": True, "load_dtd": False,
             "huge_tree": False, "remove_comments": True, "remove_pis": True}


class _Payouts:
    """N generated payouts, re-iterable (the camt writer reads them twice), none kept."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self) -> Iterator[GeneratedPayout]:
        for i in range(self.n):
            yield GeneratedPayout(f"px-pay-{i:08d}", Money(10_000 + i % 99_991, "MYR"), DAY)


def _scan(path: Path, scan: Callable[[io.BufferedReader], Iterator[object]]) -> int:
    with path.open("rb") as f:
        return sum(1 for item in scan(f) if isinstance(item, StatementLine))


def _bare_camt(path: Path) -> int:
    n = 0
    with path.open("rb") as f:
        for _, el in etree.iterparse(f, events=("end",), tag="{*}Ntry", **_HARDENED):
            n += 1
            el.clear(keep_tail=True)
            parent = el.getparent()
            while el.getprevious() is not None:
                del parent[0]  # type: ignore[union-attr]
    return n


def _bare_csv(path: Path) -> int:
    with path.open("rb") as f:
        text = io.TextIOWrapper(f, encoding="utf-8-sig", errors="surrogateescape", newline="")
        return sum(1 for _ in csv.reader(text, strict=True)) - 3  # HEADER, columns, TRAILER


def _best(fn: Callable[[], int], repeat: int) -> tuple[int, float, float]:
    """Run ``fn`` ``repeat`` times; return its count and the best wall and CPU seconds."""
    wall = cpu = float("inf")
    count = 0
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        count = fn()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return count, wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="lines per statement")
    parser.add_argument("--repeat", type=int, default=3, help="reads per figure (best kept)")
    parser.add_argument("--rails", default="iso20022,merchantrade")
    args = parser.parse_args()
    rails: dict[str, tuple[Callable[..., int], Callable[..., Iterator[object]],
                           Callable[[Path], int], str]] = {
        "iso20022": (camt_statements.write_statement, scan_camt, _bare_camt, "camt.053"),
        "merchantrade": (csv_statements.write_statement, scan_settlement, _bare_csv, "csv"),
    }
    print(f"{'rail':<14}{'lines':>10}{'scan lines/s':>14}{'bare lines/s':>14}{'ratio':>7}"
          f"{'scan (CPU)':>12}{'bare (CPU)':>12}{'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for rail in args.rails.split(","):
            write, scan, bare, suffix = rails[rail]
            path = Path(tmp) / f"{rail}.{suffix}"
            with path.open("wb") as out:
                write(out, _Payouts(args.n), DAY)
            lines, scan_s, scan_cpu = _best(lambda: _scan(path, scan), args.repeat)  # noqa: B023
            rows, bare_s, bare_cpu = _best(lambda: bare(path), args.repeat)  # noqa: B023
            if lines != args.n or rows != args.n:
                raise SystemExit(f"{rail}: read {lines} lines and {rows} bare rows of {args.n}")
            print(f"{rail:<14}{lines:>10,}{lines / scan_s:>14,.0f}{rows / bare_s:>14,.0f}"
                  f"{bare_s / scan_s:>7.2f}{lines / scan_cpu:>12,.0f}{rows / bare_cpu:>12,.0f}"
                  f"{bare_cpu / scan_cpu:>7.2f}")
            path.unlink()


if __name__ == "__main__":
    main()
