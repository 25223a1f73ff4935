"""Payout benchmark: N payments through the outbox to the Merchantrade simulator on PostgreSQL,
with 1, 2 and 4 dispatcher processes, against a floor measured in the same run.

    .venv/bin/python -m bench.payouts                 # 100,000 payments (the issue's figure)
    .venv/bin/python -m bench.payouts --n 20000 --dispatchers 1,2

For each dispatcher count: a fresh database with N instructed payments (instructing is not
timed), the simulator in its own process, then the time until every payment is ``submitted``
(the rail accepted it, the payment and its event recorded, the outbox task deferred for its
status poll). payments/s = N / that time; peak RSS = the largest VmHWM of the dispatchers.
The floor: the same simulator driven directly by a minimal loop (the adapter's ``submit_each``
in chunks of the handler's batch, the same number of processes and concurrency), no database.
PostgreSQL: GATEWAY_BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

BATCH = 100  # payouts per handler call (the rails file's batch_size)
CONCURRENCY = 32  # parallel requests per submit_each call (merchantrade max_concurrency)


def _sim_main(port: int, ready: mp.Event) -> None:  # type: ignore[valid-type]
    import logging

    from adapters.rails.merchantrade.simulator import MerchantradeSimConfig, serve
    from gateway.payments.sandbox import SIM_CALLBACK_SECRET, SIM_KEY_ID, SIM_REQUEST_SECRET

    logging.disable(logging.INFO)
    ready.set()  # type: ignore[attr-defined]
    serve("127.0.0.1", port, MerchantradeSimConfig(
        api_keys={SIM_KEY_ID: SIM_REQUEST_SECRET}, callback_secret=SIM_CALLBACK_SECRET,
        callback_url=None, tick_seconds=None))


def _dispatcher_main(env: dict[str, str]) -> None:
    os.environ.update(env)
    from gateway.config import Settings
    from gateway.hub import build_hub
    from gateway.outbox.dispatcher import Dispatcher

    async def run() -> None:
        hub = build_hub(Settings())
        d = Dispatcher(hub.engine, hub.handlers(), batch=2 * BATCH, concurrency=8,
                       lease=timedelta(seconds=120), idle_sleep=0.02)
        await d.run(asyncio.Event())

    asyncio.run(run())


def _floor_main(url: str, n: int, start: int) -> None:
    from adapters.rails._pool import rail_client
    from adapters.rails.merchantrade import MerchantradeConfig, MerchantradeRail
    from gateway.money import Money
    from gateway.payments.sandbox import SIM_CALLBACK_SECRET, SIM_KEY_ID, SIM_REQUEST_SECRET
    from gateway.ports.rail import PayoutInstruction

    rail = MerchantradeRail(MerchantradeConfig(
        base_url=url, api_key_id=SIM_KEY_ID, hmac_secret=SIM_REQUEST_SECRET,
        callback_secret=SIM_CALLBACK_SECRET, max_concurrency=CONCURRENCY))

    async def run() -> None:
        async with rail_client(max_connections=200) as client:
            async def chunk(lo: int) -> None:
                await rail.submit_each(client, [PayoutInstruction(
                    f"FLOOR-{i}", f"FLOOR-{i}", Money(125000, "MYR"), "Worker", "MTWALLET",
                    "60123456789", "PERKESO bench") for i in range(lo, min(lo + BATCH,
                                                                           start + n))])
            for lo in range(start, start + n, 2 * BATCH):  # two chunks at a time, as the hub
                await asyncio.gather(chunk(lo), chunk(lo + BATCH))

    asyncio.run(run())


def _start_sim() -> tuple[mp.Process, str]:
    from gateway.payments.sandbox import free_port

    port = free_port()
    ready = mp.Event()
    proc = mp.Process(target=_sim_main, args=(port, ready), daemon=True)
    proc.start()
    ready.wait(10)
    import httpx
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/_sim/faults", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


async def _prepare(admin: str, n: int) -> str:
    import asyncpg

    from gateway.migrate import upgrade
    from gateway.payments.service import PAYOUT_KIND, idempotency_key

    name = f"px_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin.replace("+asyncpg", ""))
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = admin.rsplit("/", 1)[0] + "/" + name
    await upgrade(url)
    # Bulk-load N instructed payments and their payout tasks (what the back office's instruct
    # writes, minus the per-request round trips, which this benchmark does not measure).
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    rows = [(f"B{i:08d}", idempotency_key(f"B{i:08d}")) for i in range(n)]
    from datetime import UTC, datetime
    now = datetime.now(UTC)
    await conn.execute("SET synchronous_commit = on")
    await conn.copy_records_to_table("payments", records=[
        (pid, key, "0" * 64, "instructed", "merchantrade", "EI_MEDICAL", f"CLM-{pid}",
         "Worker", "MTWALLET", "60123456789", "Worker", 125000, "MYR", 125000, "MYR", now, now)
        for pid, key in rows], columns=[
        "payment_id", "idempotency_key", "request_sha256", "state", "rail", "benefit",
        "claim_ref", "beneficiary_name", "provider", "account", "account_name",
        "amount_minor", "currency", "base_minor", "base_currency", "created_at", "updated_at"])
    await conn.copy_records_to_table("outbox", records=[
        (PAYOUT_KIND, "merchantrade", pid, "pending", 0, now, now, now) for pid, _ in rows],
        columns=["kind", "destination", "ref", "state", "attempts", "next_attempt_at",
                 "created_at", "updated_at"])
    await conn.execute("VACUUM ANALYZE")
    await conn.close()
    return url


async def _submitted(url: str) -> int:
    import asyncpg
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM payments WHERE state='submitted'"))
    finally:
        await conn.close()


async def _drop(admin: str, url: str) -> None:
    import asyncpg
    conn = await asyncpg.connect(admin.replace("+asyncpg", ""))
    await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await conn.close()


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_config(admin: str, n: int, k: int, folder: Path) -> tuple[float, float, float]:
    from gateway.bootstrap import write_dev_registry
    from gateway.keys import write_private_key
    from gateway.payments.sandbox import write_rails_file

    url = asyncio.run(_prepare(admin, n))
    sim, sim_url = _start_sim()
    try:
        if not (folder / "hub.jwk.json").exists():
            write_private_key(folder / "hub.jwk.json", "MY-PERKESO-bench-1")
            write_dev_registry(folder / "partners.toml")
        rails = write_rails_file(folder / "rails.toml", {"merchantrade": sim_url},
                                 read_timeout=10, poll_after=3600, poll_max=3600,
                                 batch_size=BATCH, max_concurrency=CONCURRENCY)
        env = {"GATEWAY_DATABASE_URL": url, "GATEWAY_RAILS_FILE": str(rails),
               "GATEWAY_PARTNERS_FILE": str(folder / "partners.toml"),
               "GATEWAY_SIGNING_KEY_FILE": str(folder / "hub.jwk.json"),
               "GATEWAY_LOG_LEVEL": "WARNING", "GATEWAY_DB_POOL_SIZE": "8"}
        started = time.monotonic()
        procs = [mp.Process(target=_dispatcher_main, args=(env,), daemon=True)
                 for _ in range(k)]
        for p in procs:
            p.start()
        peak = 0.0
        while True:
            time.sleep(0.5)
            peak = max([peak] + [_peak_rss_mb(p.pid or 0) for p in procs])
            done = asyncio.run(_submitted(url))
            sys.stderr.write(f"\r  {k} dispatcher(s): {done}/{n}")
            if done >= n:
                break
        elapsed = time.monotonic() - started
        sys.stderr.write("\n")
        for p in procs:
            p.terminate()
            p.join(10)
        floor_started = time.monotonic()
        share = n // k
        floors = [mp.Process(target=_floor_main, args=(sim_url, share, i * share))
                  for i in range(k)]
        for p in floors:
            p.start()
        for p in floors:
            p.join()
        floor = (share * k) / (time.monotonic() - floor_started)
        return n / elapsed, peak, floor
    finally:
        sim.terminate()
        sim.join(5)
        asyncio.run(_drop(admin, url))


def main() -> None:
    parser = argparse.ArgumentParser(description="payout benchmark (see module docstring)")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dispatchers", default="1,2,4")
    args = parser.parse_args()
    admin = os.environ.get("GATEWAY_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    admin = admin.replace("postgresql://", "postgresql+asyncpg://", 1)
    mp.set_start_method("spawn")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in [int(x) for x in args.dispatchers.split(",")]:
            rate, peak, floor = run_config(admin, args.n, k, Path(tmp))
            results.append((k, rate, peak, floor))
    print(f"\npayout run: {args.n} payments, merchantrade simulator, PostgreSQL, "
          f"{os.cpu_count()} CPUs")
    print(f"{'dispatchers':>11} {'payments/s':>11} {'peak RSS MB':>12} {'floor/s':>9} "
          f"{'ratio':>6}")
    for k, rate, peak, floor in results:
        print(f"{k:>11} {rate:>11.0f} {peak:>12.0f} {floor:>9.0f} {rate / floor:>6.2f}")


if __name__ == "__main__":
    main()
