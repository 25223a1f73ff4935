"""Reconciliation benchmark: the engine's full run against a floor, on PostgreSQL, per rail.

    .venv/bin/python -m bench.reconcile [--lines 100000,1000000] [--rails merchantrade,iso20022]
    .venv/bin/python -m bench.reconcile --quick        # 10,000 and 100,000 lines

For each rail and size: a fresh database (migrated) with N ``paid`` payments of the rail,
bulk-loaded by COPY with an event each (not timed), and the N-line statement of their day
written to a temporary folder by the rail's own generator
(``adapters.rails.<rail>.statements.write_statement``). Then, each in its own process (so
peak RSS is that measurement's alone):

- the floor: the bare streaming parse (the rail adapter's ``scan_statement``) plus one key
  lookup of the same ids per batch of the engine's size (one SELECT each, on the same
  SQLAlchemy Core + asyncpg stack), nothing else;
- the floor and the move: the same, plus each batch's payments moved ``paid -> reconciled``
  with their events by the engine's own statement (``payments.repository.move_with_events``),
  in one transaction rolled back at the end, then VACUUM ANALYZE (not timed) so the engine
  finds the tables as loaded. Not a target: a reference for what moving the payments alone
  costs, the one write no reconciliation under this schema can avoid. The time of the move's
  own statements (built, sent, run on the database, answered) is also kept apart: N / that
  time is about the most a run on one connection can reach, however well everything else
  overlaps with it (``move ceil``, as a share of the floor; the engine's moves follow a
  locking lookup and may cost a little less, and each figure is one sample);
- the engine: ``ReconciliationService.run`` with the file: store the statement, scan and prove
  it, match in batches, reconcile every payment (a locked lookup, the move and an event
  each), write one item per line, sweep the ledger side, hash the report; one transaction.

All three read the same file on the same database, in that order. lines/s =
N / wall time; peak RSS = the process's own maximum resident set (ru_maxrss), which includes
the interpreter and the imports (~100 MB) for both sides alike. The targets (issue 10): engine
/ floor >= 0.5, and the engine's peak RSS at the largest size within 1.2x of that at the
smallest. The machine is shared: compare the ratios, measured side by side, not the absolutes.
PostgreSQL: GATEWAY_BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

PG_ADMIN = os.environ.get("GATEWAY_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
DAY = date(2026, 11, 30)  # a Monday; the payments are paid at 10:00 KL that day
PAID_AT = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)  # the run's clock: after the next day's cut-off
RAILS = ("merchantrade", "iso20022")
_COPY_CHUNK = 50_000


def _payment_id(i: int) -> str:
    return f"BENCH-{i:010d}"


def _amount_minor(i: int) -> int:
    return 10_000 + (i * 7919) % 500_000  # 100.00 .. 5,099.99 MYR, varied


class _Payouts:
    """The statement's payouts, re-iterable (camt.053 reads them twice), one at a time."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self) -> Iterator[Any]:
        from adapters.rails._statements import GeneratedPayout
        from gateway.money import Money

        for i in range(self.n):
            yield GeneratedPayout(_payment_id(i), Money(_amount_minor(i), "MYR"), DAY)


def _pg(name: str) -> str:
    return PG_ADMIN.rpartition("/")[0] + "/" + name


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _load(url: str, rail: str, n: int) -> None:
    """N paid payments of ``rail`` by COPY, then ANALYZE (as autovacuum would, eventually)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        columns = ["payment_id", "idempotency_key", "request_sha256", "state", "rail", "benefit",
                   "beneficiary_name", "provider", "account", "account_name", "amount_minor",
                   "currency", "base_minor", "base_currency", "created_at", "updated_at",
                   "paid_at"]
        for lo in range(0, n, _COPY_CHUNK):
            rows = []
            for i in range(lo, min(n, lo + _COPY_CHUNK)):
                pid, minor = _payment_id(i), _amount_minor(i)
                rows.append((pid, pid, "0" * 64, "paid", rail, "EI_TEMPORARY_DISABLEMENT",
                             "Siti Aminah", "MTWALLET", "60123456789", "Siti Aminah", minor,
                             "MYR", minor, "MYR", PAID_AT, PAID_AT, PAID_AT))
            await conn.copy_records_to_table("payments", records=rows, columns=columns)
        await conn.execute(_events_sql())
        await conn.execute("ANALYZE payments; ANALYZE payment_events")
    finally:
        await conn.close()


def _events_sql() -> str:
    """Each payment's event, as the hub writes it: the digest of its changing columns, so the
    run's writes find the payments as the hub left them (gateway.evidence.payments)."""
    from sqlalchemy import literal, select
    from sqlalchemy.dialects import postgresql

    from gateway.evidence.payments import sql_digest
    from gateway.storage.tables import payment_events, payments

    q = payment_events.insert().from_select(
        ["payment_pk", "from_state", "to_state", "cause", "at", "payment_sha256"],
        select(payments.c.pk, literal(None), payments.c.state, literal("instructed"),
               payments.c.paid_at, sql_digest()))
    return str(q.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def _write_statement(rail: str, n: int, path: Path) -> None:
    with path.open("wb") as out:
        if rail == "merchantrade":
            from adapters.rails.merchantrade.statements import write_statement
            written = write_statement(out, _Payouts(n), DAY)
        else:
            from adapters.rails.iso20022.statements import write_statement as write_camt
            written = write_camt(out, _Payouts(n), DAY)
    assert written == n, (written, n)


def _adapter(rail: str) -> Any:
    from pydantic import SecretStr

    secret = SecretStr("bench-secret-bench-secret-bench-secret")
    if rail == "merchantrade":
        from adapters.rails.merchantrade import MerchantradeConfig, MerchantradeRail
        return MerchantradeRail(MerchantradeConfig(
            base_url="http://127.0.0.1:9", api_key_id="bench", hmac_secret=secret,
            callback_secret=secret))
    from adapters.rails.iso20022 import Iso20022Config, Iso20022Rail
    return Iso20022Rail(Iso20022Config(base_url="http://127.0.0.1:9", api_key_id="bench",
                                       hmac_secret=secret, callback_secret=secret))


# ---- the three measurements, each run in its own process (``--measure``) -------------------

async def _floor(url: str, rail: str, path: Path, *, move: bool = False) -> tuple[int, float]:
    """Parse the statement and look its ids up, a batch at a time; return the lines found
    and the seconds spent moving. With ``move``, also move each batch's payments as a run
    would, and roll it all back."""
    from sqlalchemy import select

    from gateway.payments.domain import Cause, PaymentState
    from gateway.payments.repository import move_with_events
    from gateway.ports.rail import StatementLine
    from gateway.reconciliation.service import BATCH
    from gateway.storage.engine import create_engine
    from gateway.storage.tables import payments

    adapter = _adapter(rail)
    engine = create_engine(url)
    cols = [payments.c[c] for c in ("pk", "payment_id", "state", "rail", "amount_minor",
                                    "currency", "rail_reference", "paid_at")]
    found = 0
    moving = 0.0
    try:
        async with engine.connect() as conn:
            ids: list[str] = []

            async def lookup() -> int:
                nonlocal moving
                q = select(*cols).where(payments.c.payment_id.in_(ids))
                rows = (await conn.execute(q)).all()
                if move:
                    t0 = time.perf_counter()
                    moved = await move_with_events(
                        conn, [r.pk for r in rows], PaymentState.paid.value,
                        PaymentState.reconciled.value, Cause.reconciled.value, "bench", NOW,
                        checked=True)
                    moving += time.perf_counter() - t0
                    assert moved == len(rows), (moved, len(rows))
                return len(rows)

            with path.open("rb") as f:
                for item in adapter.scan_statement(f):
                    if isinstance(item, StatementLine) and item.end_to_end_id:
                        ids.append(item.end_to_end_id)
                        if len(ids) == BATCH:
                            found += await lookup()
                            ids.clear()
            if ids:
                found += await lookup()
            await conn.rollback()
    finally:
        await engine.dispose()
    return found, moving


async def _vacuum(url: str) -> None:
    """Clear what the rolled-back move left (dead rows and index entries), as autovacuum
    would before a scheduled run, so the engine is not measured on a bloated table."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM ANALYZE payments, payment_events")
    finally:
        await conn.close()


async def _engine(url: str, rail: str, path: Path, work: Path) -> int:
    """The engine's full run with the file; return the payments it reconciled."""
    import httpx

    from gateway.composition import build_hub
    from gateway.config import Settings
    from gateway.payments.rails import Settlement
    from gateway.reconciliation.service import ReconciliationService

    hub = build_hub(Settings(database_url=url, partners_file=work / "partners.toml",
                             signing_key_file=work / "hub.jwk.json", dispatch_in_serve=False),
                    clock=lambda: NOW)
    try:
        svc = ReconciliationService(hub.uow, hub.payments.service, {rail: _adapter(rail)},
                                    {rail: Settlement()}, lambda: NOW, httpx.AsyncClient)
        result = await svc.run(rail, DAY, path)
        return int(result.summary["counts"].get("matched", 0))
    finally:
        await hub.close()


def _measure_main(kind: str, url: str, rail: str, path: Path, work: Path) -> None:
    import logging

    logging.disable(logging.INFO)
    # Imports are not what is measured: load both sides' modules before the clock starts.
    import gateway.composition
    import gateway.reconciliation.service
    import gateway.storage.engine  # noqa: F401
    from gateway.reconciliation.calendar import calendar_for

    _adapter(rail)
    calendar_for("KUL")  # the holidays library imports its countries' modules on first use
    t0 = time.perf_counter()
    moving = 0.0
    if kind in ("floor", "move"):
        n, moving = asyncio.run(_floor(url, rail, path, move=kind == "move"))
    else:
        n = asyncio.run(_engine(url, rail, path, work))
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"n": n, "seconds": seconds, "moving": moving, "rss_mb": rss_mb}))


def _measure(kind: str, url: str, rail: str, path: Path, work: Path) -> dict[str, Any]:
    url_async = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    out = subprocess.run(
        [sys.executable, "-m", "bench.reconcile", "--measure", kind, "--url", url_async,
         "--rail", rail, "--file", str(path), "--work", str(work)],
        capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{kind} ({rail}) failed:\n{out.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(sizes: list[int], rails: list[str]) -> int:
    from gateway.protocol.keys import write_private_key
    from gateway.runtime.bootstrap import write_dev_registry
    from gateway.storage.migrate import upgrade

    work = Path(tempfile.mkdtemp(prefix="px-bench-recon-"))
    write_private_key(work / "hub.jwk.json", "MY-PERKESO-bench-1")  # the hub's files (unused)
    write_dev_registry(work / "partners.toml")
    print(f"# reconciliation benchmark: PostgreSQL, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at start (the machine is shared)")
    print(f"{'rail':13} {'lines':>9} {'floor l/s':>10} {'+move l/s':>10} {'engine l/s':>11} "
          f"{'+move/floor':>11} {'move ceil':>9} {'run/floor':>9} {'floor RSS':>10} "
          f"{'engine RSS':>11}")
    rss: dict[str, list[float]] = {}
    ratios: list[float] = []
    moves: list[float] = []
    ceilings: list[float] = []
    try:
        for rail in rails:
            for n in sizes:
                name = f"px_bench_recon_{uuid.uuid4().hex[:8]}"
                asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
                try:
                    url = _pg(name)
                    asyncio.run(upgrade(url.replace("postgresql://", "postgresql+asyncpg://",
                                                    1)))
                    asyncio.run(_load(url, rail, n))
                    path = work / f"{rail}-{n}.statement"
                    _write_statement(rail, n, path)
                    floor = _measure("floor", url, rail, path, work)
                    move = _measure("move", url, rail, path, work)
                    asyncio.run(_vacuum(url))
                    engine = _measure("engine", url, rail, path, work)
                finally:
                    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                for side in (floor, move, engine):
                    if side["n"] != n:  # a side that skipped work would flatter it: refuse
                        raise SystemExit(f"{rail} {n}: a side found {side['n']} of {n} lines")
                f_lps, m_lps = n / floor["seconds"], n / move["seconds"]
                e_lps = n / engine["seconds"]
                ceiling = n / max(move["moving"], 1e-9) / f_lps
                ratios.append(e_lps / f_lps)
                moves.append(m_lps / f_lps)
                ceilings.append(ceiling)
                rss.setdefault(rail, []).append(engine["rss_mb"])
                print(f"{rail:13} {n:9d} {f_lps:10.0f} {m_lps:10.0f} {e_lps:11.0f} "
                      f"{m_lps / f_lps:11.0%} {ceiling:9.0%} {e_lps / f_lps:9.0%} "
                      f"{floor['rss_mb']:8.0f}MB {engine['rss_mb']:9.0f}MB", flush=True)
                path.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    for rail, peaks in rss.items():
        if len(peaks) > 1:
            print(f"{rail}: engine peak RSS at {sizes[-1]:,} / at {sizes[0]:,} lines: "
                  f"{peaks[-1] / peaks[0]:.2f}x (target <= 1.2)")
    print(f"run/floor: {min(ratios):.0%} .. {max(ratios):.0%} (target >= 50%); the floor and "
          f"the move alone: {min(moves):.0%} .. {max(moves):.0%} of the floor")
    print(f"move ceiling: the move's own statements alone allow {min(ceilings):.0%} .. "
          f"{max(ceilings):.0%} of the floor (about the most a run on one connection can reach)")
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", default="100000,1000000", help="statement sizes, comma-separated")
    ap.add_argument("--rails", default=",".join(RAILS))
    ap.add_argument("--quick", action="store_true", help="10,000 and 100,000 lines")
    ap.add_argument("--measure", choices=("floor", "move", "engine"), help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--rail", help=argparse.SUPPRESS)
    ap.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.measure:
        _measure_main(a.measure, a.url, a.rail, a.file, a.work)
        return
    try:
        sizes = [10_000, 100_000] if a.quick else [int(x) for x in a.lines.split(",")]
    except ValueError:
        sys.exit(f"--lines: {a.lines!r} is not a comma-separated list of numbers")
    rails = a.rails.split(",")
    unknown = sorted(set(rails) - set(RAILS))
    if unknown or any(n < 1 for n in sizes):
        sys.exit(f"--rails: one of {', '.join(RAILS)}; --lines: positive numbers")
    sys.exit(run(sizes, rails))


if __name__ == "__main__":
    main()
