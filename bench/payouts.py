"""Payout benchmark: N payments through the outbox to the Merchantrade simulator on PostgreSQL,
with 1, 2 and 4 dispatcher processes, against a floor measured in the same run.

    .venv/bin/python -m bench.payouts                 # 100,000 payments, 1, 2 and 4 dispatchers
    .venv/bin/python -m bench.payouts --n 20000 --dispatchers 1,2 --small-n 0

For each dispatcher count: a fresh database with N instructed payments (instructing is not
timed), a fresh simulator in its own process, then the time until every payment is
``submitted`` (the rail accepted it, the payment and its event recorded, the outbox task
deferred for its status poll). payments/s = N / that time; peak RSS = the largest VmHWM of the
dispatchers; CPU ms/payment = the CPU time of all dispatchers (or of the simulator) / N.
The floor: a fresh simulator driven directly by a minimal loop (the adapter's ``submit_each``
over the same HTTP client, in chunks of the handler's batch, two chunks at a time, the same
number of processes), no database; every payout must be accepted.
Before the table, 2 dispatchers run ``--small-n`` payments (no floor): their peak RSS next to
the one at N shows that memory does not grow with N.

The simulator is one process (uvicorn with uvloop and httptools, no access log) with its
in-memory ledger (exact: a key paid at most once, same key and another body: 409), HMAC
verification of every request and the fault middleware in place (no fault armed).
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
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

BATCH = 100  # payouts per handler call (the rails file's batch_size)
CONCURRENCY = 32  # parallel requests per submit_each call (merchantrade max_concurrency)


def _sim_main(port: int, ready: mp.Event) -> None:  # type: ignore[valid-type]
    import logging

    import uvicorn

    from adapters.rails.merchantrade.simulator import MerchantradeSimConfig, create_app
    from gateway.sandbox.rails import SIM_CALLBACK_SECRET, SIM_KEY_ID, SIM_REQUEST_SECRET

    logging.disable(logging.INFO)
    app = create_app(MerchantradeSimConfig(
        api_keys={SIM_KEY_ID: SIM_REQUEST_SECRET}, callback_secret=SIM_CALLBACK_SECRET,
        callback_url=None, tick_seconds=None))
    ready.set()  # type: ignore[attr-defined]
    # uvloop + httptools (uvicorn's fastest), no access log: the simulator is not what is measured.
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                log_level="warning", access_log=False, lifespan="on")


def _dispatcher_main(env: dict[str, str]) -> None:
    os.environ.update(env)
    from gateway.composition import build_hub
    from gateway.config import Settings
    from gateway.outbox.dispatcher import Dispatcher

    async def run() -> None:
        hub = build_hub(Settings())
        d = Dispatcher(hub.uow, hub.handlers(), batch=2 * BATCH, concurrency=8,
                       lease=timedelta(seconds=120), idle_sleep=0.02)
        await d.run(asyncio.Event())

    asyncio.run(run())


def _floor_main(url: str, n: int, start: int) -> None:
    from pydantic import SecretStr

    from adapters.rails import rail_client
    from adapters.rails.merchantrade import MerchantradeConfig, MerchantradeRail
    from gateway.money import Money
    from gateway.ports.rail import PayoutInstruction
    from gateway.sandbox.rails import SIM_CALLBACK_SECRET, SIM_KEY_ID, SIM_REQUEST_SECRET

    rail = MerchantradeRail(MerchantradeConfig(
        base_url=url, api_key_id=SIM_KEY_ID, hmac_secret=SecretStr(SIM_REQUEST_SECRET),
        callback_secret=SecretStr(SIM_CALLBACK_SECRET), max_concurrency=CONCURRENCY))

    async def run() -> None:
        async with rail_client(max_connections=200) as client:
            async def chunk(lo: int) -> int:
                results = await rail.submit_each(client, [PayoutInstruction(
                    f"FLOOR-{i}", f"FLOOR-{i}", Money(125000, "MYR"), "Worker", "MTWALLET",
                    "60123456789", "PERKESO bench") for i in range(lo, min(lo + BATCH,
                                                                           start + n))])
                return sum(1 for r in results if r.status is not None)

            accepted = 0
            for lo in range(start, start + n, 2 * BATCH):  # two chunks at a time, as the hub
                accepted += sum(await asyncio.gather(chunk(lo), chunk(lo + BATCH)))
            if accepted != n:  # a floor that skipped work would flatter nothing, but say so
                raise SystemExit(f"floor: only {accepted} of {n} payouts accepted")

    asyncio.run(run())


def _start_sim() -> tuple[mp.Process, str]:
    from gateway.sandbox.rails import free_port

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

    from gateway.payments.service import PAYOUT_KIND, idempotency_key
    from gateway.storage.migrate import upgrade

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


@dataclass
class Result:
    dispatchers: int
    n: int
    rate: float  # payments/s through the hub
    peak_rss_mb: float  # the largest VmHWM of the dispatcher processes
    sim_rss_mb: float  # the simulator's VmHWM (its ledger holds every payout: grows with N)
    floor: float | None  # payouts/s of the bare loop against a fresh simulator, same setup
    disp_cpu_ms: float = 0.0  # CPU ms per payment, all dispatchers together
    sim_cpu_ms: float = 0.0  # CPU ms per payment, the simulator


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _timed_dispatch(url: str, n: int, k: int,
                    env: dict[str, str]) -> tuple[float, float, float]:
    started = time.monotonic()
    procs = [mp.Process(target=_dispatcher_main, args=(env,), daemon=True) for _ in range(k)]
    for p in procs:
        p.start()
    peak = 0.0
    try:
        while True:
            time.sleep(0.5)
            peak = max([peak] + [_peak_rss_mb(p.pid or 0) for p in procs])
            done = asyncio.run(_submitted(url))
            sys.stderr.write(f"\r  {k} dispatcher(s), N={n}: {done}/{n}")
            if done >= n:
                break
            if not all(p.is_alive() for p in procs):
                raise SystemExit("a dispatcher died")
        elapsed = time.monotonic() - started
        cpu = sum(_cpu_seconds(p.pid or 0) for p in procs)
    finally:
        sys.stderr.write("\n")
        for p in procs:
            p.terminate()
            p.join(10)
    return n / elapsed, peak, cpu


def _timed_floor(sim_url: str, n: int, k: int) -> float:
    share = n // k
    started = time.monotonic()
    floors = [mp.Process(target=_floor_main, args=(sim_url, share, i * share)) for i in range(k)]
    for p in floors:
        p.start()
    for p in floors:
        p.join()
    if any(p.exitcode != 0 for p in floors):
        raise SystemExit("the floor loop failed")
    return (share * k) / (time.monotonic() - started)


def run_config(admin: str, n: int, k: int, folder: Path, *, floor: bool = True) -> Result:
    """One configuration: fresh database, fresh simulator, k dispatchers; then (if ``floor``)
    a fresh simulator driven by k bare loops."""
    from gateway.protocol.keys import write_private_key
    from gateway.runtime.bootstrap import write_dev_registry
    from gateway.sandbox.rails import write_rails_file

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
        rate, peak, cpu = _timed_dispatch(url, n, k, env)
        sim_rss, sim_cpu = _peak_rss_mb(sim.pid or 0), _cpu_seconds(sim.pid or 0)
    finally:
        sim.terminate()
        sim.join(5)
        asyncio.run(_drop(admin, url))
    floor_rate = None
    if floor:
        # A fresh simulator, so the floor's ledger starts as empty as the hub's did.
        sim, sim_url = _start_sim()
        try:
            floor_rate = _timed_floor(sim_url, n, k)
        finally:
            sim.terminate()
            sim.join(5)
    return Result(k, n, rate, peak, sim_rss, floor_rate, 1000 * cpu / n, 1000 * sim_cpu / n)


def main() -> None:
    parser = argparse.ArgumentParser(description="payout benchmark (see module docstring)")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dispatchers", default="1,2,4")
    parser.add_argument("--small-n", type=int, default=10_000,
                        help="also run 2 dispatchers with this N (no floor) to show that the "
                             "dispatchers' memory does not grow with N; 0 to skip")
    args = parser.parse_args()
    admin = os.environ.get("GATEWAY_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    admin = admin.replace("postgresql://", "postgresql+asyncpg://", 1)
    mp.set_start_method("spawn")
    results: list[Result] = []
    small: Result | None = None
    total = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        if args.small_n:
            small = run_config(admin, args.small_n, 2, Path(tmp), floor=False)
        for k in [int(x) for x in args.dispatchers.split(",")]:
            results.append(run_config(admin, args.n, k, Path(tmp)))
    print(f"\npayout run: {args.n} payments, merchantrade simulator (1 process, uvloop + "
          f"httptools), PostgreSQL, {os.cpu_count()} CPUs, {time.monotonic() - total:.0f} s")
    print(f"{'dispatchers':>11} {'payments/s':>11} {'floor/s':>9} {'ratio':>6} "
          f"{'peak RSS MB':>12} {'sim RSS MB':>11} {'CPU ms/payment: hub':>20} {'sim':>5}")
    for r in results:
        assert r.floor is not None
        print(f"{r.dispatchers:>11} {r.rate:>11.0f} {r.floor:>9.0f} {r.rate / r.floor:>6.2f} "
              f"{r.peak_rss_mb:>12.0f} {r.sim_rss_mb:>11.0f} {r.disp_cpu_ms:>20.2f} "
              f"{r.sim_cpu_ms:>5.2f}")
    if small is not None:
        big = next((r for r in results if r.dispatchers == 2), None)
        print(f"memory flat in N: 2 dispatchers, peak RSS (largest dispatcher) "
              f"{small.peak_rss_mb:.0f} MB at N={small.n}"
              + (f", {big.peak_rss_mb:.0f} MB at N={big.n}" if big else "")
              + f" ({small.rate:.0f} payments/s at N={small.n})")


if __name__ == "__main__":
    main()
