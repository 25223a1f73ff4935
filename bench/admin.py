"""Admin list benchmark: does a page of each admin list cost the same at 10,000 and at
10,000,000 messages and payments? PostgreSQL.

    .venv/bin/python -m bench.admin [--rows 10000,10000000] [--repeat 30] [--limit 100]

A fresh database (migrated to head) is filled in SQL (INSERT ... SELECT over
generate_series: the fastest load PostgreSQL has short of COPY from a file) with messages,
their state and delivery receipts, payments, outbox tasks, audit records, discrepancies and
proposals in realistic proportions (see ``_MESSAGES`` and the rest: partners, types, states and
rails skewed, times spread evenly over two years at the largest size), then ANALYZEd and
VACUUMed; each size in its own database, the times scaled so every size has the same
distributions. Before a large load the secondary indexes and constraints are dropped and
rebuilt after it, as a bulk load does.

Each admin list is then read through the real HTTP app in-process (``httpx.ASGITransport``,
a viewer or auditor token of the development issuer, the audit record each read writes
included): the first page and a deep keyset page (a cursor half way down the table), each
``--repeat`` times after a warm-up, the sizes' reads alternating so that a busy machine
slows them alike. Prints p50/p99 per list and page at each size and the
ratio of the largest size's p50 to the smallest's (target <= 1.5).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.intake import PG_ADMIN, _pg_db
from gateway.storage.migrate import upgrade

TARGET = 1.5
SPAN = timedelta(days=730)  # the largest size's rows are spread over two years
END = datetime(2026, 12, 1, tzinfo=UTC)

# Skewed as traffic is: a few partners carry most of it and one is new (MM-SSB, 0.5%); a rare
# value is where a filter's index matters, a common one is found as fast by the pk order.
# Deterministic pseudo-random draws per row: (g * prime) % 1000 for a few primes, so the
# distributions are the same at every size and no RNG state is needed in SQL.
_U = "((g * {p}) % 1000)"
U1, U2, U3, U4 = (_U.format(p=p) for p in (7919, 104729, 1299709, 15485863))

_PARTNER = (f"CASE WHEN {U1} < 450 THEN 'ID-BPJSTK' WHEN {U1} < 700 THEN 'NP-FEB' "
            f"WHEN {U1} < 880 THEN 'BD-WEWB' WHEN {U1} < 995 THEN 'PK-MOPHRD' "
            "ELSE 'MM-SSB' END")
_TYPE = (f"CASE WHEN {U2} < 400 THEN 'claim.notify' WHEN {U2} < 650 THEN 'claim.status' "
         f"WHEN {U2} < 800 THEN 'payment.notice' WHEN {U2} < 900 THEN 'payment.confirm' "
         f"WHEN {U2} < 960 THEN 'document.deliver' WHEN {U2} < 990 THEN 'receipt.ack' "
         "ELSE 'death.notify' END")
_MSTATE = (f"CASE WHEN {U3} < 700 THEN 'delivered' WHEN {U3} < 920 THEN 'acknowledged' "
           f"WHEN {U3} < 970 THEN 'processed' WHEN {U3} < 990 THEN 'queued' ELSE 'failed' END")
_PSTATE = (f"CASE WHEN {U3} < 850 THEN 'paid' WHEN {U3} < 900 THEN 'failed' "
           f"WHEN {U3} < 940 THEN 'submitted' WHEN {U3} < 970 THEN 'instructed' "
           f"WHEN {U3} < 990 THEN 'cancelled' ELSE 'unknown' END")
_RAIL = f"CASE WHEN {U4} < 700 THEN 'duitnow' WHEN {U4} < 980 THEN 'swift' ELSE 'wise' END"
# Hub time: pk order, evenly spread so the largest size covers SPAN ending at END.
_AT = "($1::timestamptz + (g * $2::double precision) * interval '1 second')"

# One thread (correlation id) per 8 messages; payment g belongs to thread g's case.
_MESSAGES = f"""
INSERT INTO messages (pk, direction, partner_id, message_id, sender, recipient, type,
    correlation_id, sent_at, received_at, wire, wire_media_type, body_sha256, signature, kid,
    receipt, receipt_signature)
SELECT g, d, p, 'm-' || lpad(g::text, 34, '0'),
    CASE WHEN d = 'in' THEN p ELSE 'MY-PERKESO' END,
    CASE WHEN d = 'in' THEN 'MY-PERKESO' ELSE p END,
    {_TYPE}, 'CLM-' || (g / 8), {_AT}, {_AT},
    convert_to('{{"bench":' || g || ',"pad":"' || repeat('x', 160) || '"}}', 'UTF8'),
    'application/json', md5(g::text) || md5(g::text), 'sig.' || g, 'kid-1',
    CASE WHEN d = 'in' THEN '\\x7b7d'::bytea END, CASE WHEN d = 'in' THEN 'rsig' END
FROM (SELECT g, {_PARTNER} AS p, CASE WHEN {U4} < 600 THEN 'in' ELSE 'out' END AS d
      FROM generate_series($3::bigint, $4::bigint) AS g) AS s
"""
_STATES = f"""
INSERT INTO message_state (message_pk, state, detail, updated_at)
SELECT g, {_MSTATE}, NULL, {_AT} FROM generate_series($3::bigint, $4::bigint) AS g
"""
_RECEIPTS = f"""
INSERT INTO delivery_receipts (message_pk, received_at, body, signature, kid)
SELECT g, {_AT} + interval '3 seconds', '\\x7b7d'::bytea, 'dsig', 'kid-1'
FROM generate_series($3::bigint, $4::bigint) AS g
WHERE {U4} >= 600 AND {U3} < 920
"""
_PAYMENTS = f"""
INSERT INTO payments (pk, payment_id, idempotency_key, request_sha256, state, rail, partner_id,
    benefit, claim_ref, beneficiary_name, beneficiary_id, provider, account, account_name,
    amount_minor, currency, base_minor, base_currency, created_at, updated_at)
SELECT g, 'PAY-' || g, 'IK-' || g, md5(g::text) || md5(g::text), {_PSTATE}, {_RAIL},
    {_PARTNER}, 'invalidity', 'CLM-' || g, 'Beneficiary ' || g, 'passport:P' || g,
    'bank', lpad(g::text, 12, '0'), 'Beneficiary ' || g, 100000 + g % 50000, 'IDR',
    100000, 'MYR', {_AT}, {_AT}
FROM generate_series($3::bigint, $4::bigint) AS g
"""
# One task per four messages: nearly all done, 0.5% pending, 0.1% dead.
_OUTBOX = f"""
INSERT INTO outbox (pk, kind, destination, ordering_key, ref, state, attempts,
    next_attempt_at, last_error, created_at, updated_at)
SELECT g, CASE WHEN {U2} < 500 THEN 'deliver' WHEN {U2} < 900 THEN 'process_inbound'
    ELSE 'payout' END, {_PARTNER}, 'CLM-' || (g / 2), (g * 4)::text,
    CASE WHEN {U3} < 994 THEN 'done' WHEN {U3} < 999 THEN 'pending' ELSE 'dead' END,
    CASE WHEN {U3} < 994 THEN 1 ELSE 3 END, {_AT}, CASE WHEN {U3} >= 999 THEN 'HTTP 503' END,
    {_AT}, {_AT}
FROM generate_series($3::bigint, $4::bigint) AS g
"""
# The audit trail takes its pks from the sequence: the benchmark's own reads add to it.
_AUDIT = f"""
INSERT INTO admin_audit (at, actor, issuer, roles, action, method, path, targets,
    client_ip, outcome, status, unmasked)
SELECT {_AT}, CASE WHEN {U1} < 5 THEN 'auditor1' ELSE 'user' || (g % 40) END, 'dev', 'viewer',
    CASE WHEN {U2} < 600 THEN 'messages.search' WHEN {U2} < 950 THEN 'payments.list'
    WHEN {U2} < 995 THEN 'messages.get' ELSE 'proposals.approve' END, 'GET',
    '/admin/v1/messages', '[]', '127.0.0.1',
    CASE WHEN {U3} < 980 THEN 'ok' WHEN {U3} < 995 THEN 'invalid' ELSE 'denied' END,
    200, false
FROM generate_series($3::bigint, $4::bigint) AS g
"""
_DISCREPANCIES = f"""
INSERT INTO payment_discrepancies (pk, payment_pk, payment_id, kind, recorded_state,
    rail_state, overpayment, state, opened_at)
SELECT g, g * 100, 'PAY-' || (g * 100), 'paid_after_cancel', 'cancelled', 'paid', true,
    CASE WHEN {U3} < 900 THEN 'resolved' ELSE 'open' END, {_AT}
FROM generate_series($3::bigint, $4::bigint) AS g
"""
_PROPOSALS = f"""
INSERT INTO admin_proposals (pk, action, state, maker, editors, reason, params, targets,
    target_count, preview, created_at, updated_at, expires_at)
SELECT g, CASE WHEN {U2} < 700 THEN 'replay' ELSE 'resolve_payment' END,
    CASE WHEN {U3} < 900 THEN 'executed' WHEN {U3} < 950 THEN 'pending' ELSE 'expired' END,
    'alice', '[]', 'bench', '{{}}', '[]', 0, '{{}}', {_AT}, {_AT}, {_AT} + interval '1 day'
FROM generate_series($3::bigint, $4::bigint) AS g
"""

# table -> (insert, rows per message row)
TABLES: dict[str, tuple[str, float]] = {
    "messages": (_MESSAGES, 1.0),
    "message_state": (_STATES, 1.0),
    "delivery_receipts": (_RECEIPTS, 1.0),  # the WHERE keeps about a quarter
    "payments": (_PAYMENTS, 1.0),
    "outbox": (_OUTBOX, 0.25),
    "admin_audit": (_AUDIT, 0.05),
    "payment_discrepancies": (_DISCREPANCIES, 0.001),
    "admin_proposals": (_PROPOSALS, 0.001),
}


async def _secondary(conn: asyncpg.Connection) -> list[tuple[str, str, str]]:
    """(table, name, DDL to recreate) of every non-primary constraint and plain index of the
    loaded tables."""
    names = list(TABLES)
    cons = await conn.fetch(
        "SELECT conrelid::regclass::text AS t, conname AS n, pg_get_constraintdef(oid) AS d "
        "FROM pg_constraint WHERE conrelid::regclass::text = ANY($1) AND contype IN "
        "('u', 'f')", names)
    idx = await conn.fetch(
        "SELECT tablename AS t, indexname AS n, indexdef AS d FROM pg_indexes "
        "WHERE tablename = ANY($1) AND indexname NOT IN (SELECT conname FROM pg_constraint)",
        names)
    return ([(r["t"], r["n"], f'ALTER TABLE {r["t"]} ADD CONSTRAINT {r["n"]} {r["d"]}')
             for r in cons] + [(r["t"], r["n"], r["d"]) for r in idx])


async def load(dsn: str, start: int, end: int, *, largest: int, chunk: int = 1_000_000,
               ratios: dict[str, float] | None = None) -> float:
    """Append message rows ``start..end`` (and the other tables in proportion, ``ratios``
    overriding TABLES'); return seconds. ``largest`` fixes the time scale, so every size
    sees the same distributions."""
    step = SPAN.total_seconds() / largest
    base = END - SPAN
    conn = await asyncpg.connect(dsn)
    t0 = time.perf_counter()
    try:
        await conn.execute("SET synchronous_commit = off; SET maintenance_work_mem = '512MB'")
        rebuild = end - start > 200_000
        ddl = await _secondary(conn) if rebuild else []
        fks = [d for d in ddl if "FOREIGN KEY" in d[2]]
        for table, name, stmt in fks + [d for d in ddl if d not in fks]:
            kind = "CONSTRAINT" if stmt.startswith("ALTER") else "INDEX"
            await conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}" if
                               kind == "CONSTRAINT" else f"DROP INDEX {name}")
        for table, (sql, ratio) in TABLES.items():
            ratio = (ratios or {}).get(table, ratio)
            lo, hi = int((start - 1) * ratio) + 1, int(end * ratio)
            if hi < lo:
                continue
            t_step = step / ratio
            for a in range(lo, hi + 1, chunk):
                await conn.execute(sql, base, t_step, a, min(a + chunk - 1, hi))
            if table != "message_state":  # its key is the message's
                await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'pk'), "
                                   f"(SELECT max(pk) FROM {table}))")
        for _table, _name, stmt in [d for d in ddl if d not in fks] + fks:
            await conn.execute(stmt)
        for table in TABLES:
            await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()
    return time.perf_counter() - t0


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    params: dict[str, str]
    deep: str | None  # the deep page's cursor, or None for an unpaged view


def cases(rows: int, *, largest: int) -> list[Case]:
    """Each admin list with each filter, first page and a cursor half way down."""
    step = SPAN.total_seconds() / largest
    base = END - SPAN
    half = str(rows // 2)
    recent = (base + timedelta(seconds=step * rows * 0.5)).isoformat()
    until = (base + timedelta(seconds=step * rows * 0.9)).isoformat()
    msgs = [("messages", {}), ("messages?partner", {"partner_id": "PK-MOPHRD"}),
            ("messages?partner+direction", {"partner_id": "BD-WEWB", "direction": "out"}),
            ("messages?type", {"type": "death.notify"}),
            ("messages?direction", {"direction": "in"}),
            ("messages?state", {"state": "failed"}),
            ("messages?from+to", {"from": recent, "to": until}),
            ("messages?correlation", {"correlation_id": f"CLM-{rows // 16}"}),
            ("messages?payment", {"payment_id": f"PAY-{rows // 16}"})]
    pays = [("payments", {}), ("payments?state", {"state": "unknown"}),
            ("payments?rail", {"rail": "wise"}), ("payments?partner", {"partner_id": "MM-SSB"}),
            ("payments?from+to", {"from": recent, "to": until})]
    out: list[Case] = []
    for name, params in msgs:
        deep = None if "correlation" in name or "payment" in name else half
        out.append(Case(name, "/admin/v1/messages", params, deep))
    for name, params in pays:
        out.append(Case(name, "/admin/v1/payments", params, half))
    out += [Case("outbox/dead", "/admin/v1/outbox/dead", {}, str(max(1, rows // 8))),
            Case("outbox/dead?destination", "/admin/v1/outbox/dead",
                 {"destination": "NP-FEB"}, str(max(1, rows // 8))),
            Case("outbox depth", "/admin/v1/outbox", {}, None),
            Case("partners (health)", "/admin/v1/partners", {}, None),
            Case("audit", "/admin/v1/audit", {}, str(max(1, rows // 40))),
            Case("audit?outcome", "/admin/v1/audit", {"outcome": "denied"},
                 str(max(1, rows // 40))),
            Case("audit?from+to", "/admin/v1/audit", {"from": recent, "to": until},
                 str(max(1, int(rows * 0.05 * 0.7)))),
            Case("discrepancies?open", "/admin/v1/discrepancies", {"state": "open"}, None),
            Case("discrepancies?payment", "/admin/v1/discrepancies",
                 {"payment_id": f"PAY-{max(1, rows // 2000) * 100}"}, None),
            Case("proposals", "/admin/v1/proposals", {}, None),
            Case("proposals?state", "/admin/v1/proposals", {"state": "pending"}, None)]
    return out


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def _settings(url: str, work: Path) -> Any:
    from gateway.config import Settings

    return Settings(database_url=url, partners_file=work / "partners.toml",
                    signing_key_file=work / "hub.jwk.json",
                    backoffice_tokens_file=work / "backoffice.toml", dispatch_in_serve=False)


Figures = dict[tuple[str, str], tuple[float, float]]


async def measure(urls: dict[int, str], work: Path, *, largest: int, repeat: int,
                  limit: int) -> dict[int, Figures]:
    """p50 and p99 (ms) of each case's first and deep page at each size, through the
    in-process app of each size's database. The sizes' reads alternate (one read at each size,
    then the next), so a busy machine slows both alike and the ratio stays meaningful."""
    from gateway.admin.auth import mint_token
    from gateway.app import create_app
    from gateway.composition import build_hub

    hubs = {n: build_hub(_settings(u, work)) for n, u in urls.items()}
    clients: dict[int, httpx.AsyncClient] = {}
    out: dict[int, Figures] = {n: {} for n in urls}
    try:
        for n, hub in hubs.items():
            transport = httpx.ASGITransport(app=create_app(hub=hub, background_jobs=False))
            clients[n] = httpx.AsyncClient(transport=transport, base_url="http://hub.bench")
        token = mint_token(_settings(urls[largest], work), user="bench",
                           roles=["viewer", "auditor"], minutes=60)
        headers = {"Authorization": f"Bearer {token}"}
        per_size = {n: cases(n, largest=largest) for n in urls}
        for i, case in enumerate(per_size[largest]):
            for page in ("first", "deep") if case.deep else ("first",):
                times: dict[int, list[float]] = {n: [] for n in urls}
                for rep in range(repeat + 3):  # three warm-up reads
                    for n, client in clients.items():
                        mine = per_size[n][i]
                        params = dict(mine.params)
                        if mine.path not in ("/admin/v1/outbox", "/admin/v1/partners"):
                            params["limit"] = str(limit)
                        if page == "deep" and mine.deep:
                            params["cursor"] = mine.deep
                        t0 = time.perf_counter()
                        r = await client.get(mine.path, params=params, headers=headers)
                        dt = (time.perf_counter() - t0) * 1000
                        if r.status_code != 200:
                            raise SystemExit(f"{case.name} {page} at {n:,} rows: "
                                             f"{r.status_code} {r.text[:300]}")
                        if rep >= 3:
                            times[n].append(dt)
                for n in urls:
                    out[n][(case.name, page)] = (statistics.median(times[n]),
                                                 _pct(times[n], 99))
    finally:
        for c in clients.values():
            await c.aclose()
        for hub in hubs.values():
            await hub.close()
    return out


def _instance(work: Path) -> None:
    from gateway.backoffice.auth import write_dev_tokens
    from gateway.protocol.keys import write_private_key
    from gateway.runtime.bootstrap import write_dev_registry

    write_private_key(work / "hub.jwk.json", "MY-PERKESO-bench-1")
    write_dev_registry(work / "partners.toml")
    write_dev_tokens(work / "backoffice.toml")


def run(sizes: list[int], *, repeat: int, limit: int) -> dict[int, Figures]:
    """Load each size into its own fresh database, then measure them side by side."""
    base = PG_ADMIN.rpartition("/")[0]
    names = {n: f"px_bench_admin_{n}_{uuid.uuid4().hex[:8]}" for n in sizes}
    urls = {n: (base + "/" + db).replace("postgresql://", "postgresql+asyncpg://", 1)
            for n, db in names.items()}
    work = Path(tempfile.mkdtemp(prefix="px-bench-admin-"))
    _instance(work)
    largest = max(sizes)
    try:
        for rows in sizes:
            asyncio.run(_pg_db("create", names[rows]))
            asyncio.run(upgrade(urls[rows]))
            dsn = "postgresql://" + (base + "/" + names[rows]).partition("://")[2]
            secs = asyncio.run(load(dsn, 1, rows, largest=largest))
            print(f"# loaded {rows:,} messages and payments (+{int(rows * 0.25):,} outbox, "
                  f"{int(rows * 0.05):,} audit) in {secs:.0f} s", flush=True)
        return asyncio.run(measure(urls, work, largest=largest, repeat=repeat, limit=limit))
    finally:
        for db in names.values():
            asyncio.run(_pg_db("drop", db))
        shutil.rmtree(work, ignore_errors=True)


def report(results: dict[int, Figures]) -> bool:
    """Print the table; return whether every ratio meets the target."""
    sizes = sorted(results)
    small, big = sizes[0], sizes[-1]
    head = "".join(f" | {n:>12,} p50/p99 ms" for n in sizes)
    print(f"\n{'list':<28} {'page':<5}{head} | ratio p50")
    ok = True
    for key in results[small]:
        cols = "".join(f" | {results[n][key][0]:>9.2f} / {results[n][key][1]:>7.2f}"
                       for n in sizes)
        ratio = results[big][key][0] / results[small][key][0]
        ok &= ratio <= TARGET
        flag = "" if ratio <= TARGET else "  > target"
        print(f"{key[0]:<28} {key[1]:<5}{cols} | {ratio:>6.2f}{flag}")
    worst = max(results[big][k][0] / results[small][k][0] for k in results[small])
    print(f"\n# worst ratio {big:,}/{small:,} rows: {worst:.2f} (target <= {TARGET})")
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="10000,10000000",
                    help="comma-separated sizes (messages and payments), loaded in turn")
    ap.add_argument("--repeat", type=int, default=30, help="reads per list and page")
    ap.add_argument("--limit", type=int, default=100, help="page size")
    a = ap.parse_args()
    # Stopped (kill, a CI timeout): unwind as from Ctrl-C, so the databases are dropped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        sizes = sorted({int(s) for s in a.rows.split(",") if s.strip()})
    except ValueError:
        raise SystemExit(f"--rows {a.rows!r}: comma-separated whole numbers") from None
    if not sizes or sizes[0] < 1000:
        raise SystemExit("--rows: each size at least 1000 (a full first page of each list)")
    print(f"# admin list benchmark, PostgreSQL, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}, page size {a.limit}, {a.repeat} reads per page")
    results = run(sizes, repeat=a.repeat, limit=a.limit)
    if len(sizes) > 1:
        report(results)


if __name__ == "__main__":
    main()
