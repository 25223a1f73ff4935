"""Crash and chaos (PostgreSQL): 1,000 payments through several dispatcher processes while the
test kill -9s dispatchers at random moments and both rail simulators inject every fault; then
the simulators' ledgers and the gateway's agree exactly: every payment paid once, none twice,
none lost. Bounded: the whole test takes well under two minutes."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.simulation import Faults, LoopbackServer, free_port
from gateway.app import create_app
from gateway.composition import build_hub
from gateway.config import Settings
from gateway.payments.requests import PaymentIn
from gateway.sandbox.rails import start_rail_sims, write_rails_file
from gateway.storage.tables import outbox, payments
from tests.support.databases import PgTemplate
from tests.support.payments import payment_body

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

N = 1000
WORKERS = 3
ROOT = Path(__file__).resolve().parents[3]
FAULTS = [("latency", {"seconds": 0.05}), ("timeout", {"seconds": 0.8}),
          ("error_before", {"status": 503}), ("error_after", {"status": 500}),
          ("reset_before", {}), ("reset_after", {}), ("throttle", {"status": 429})]


@pytest.fixture
def pg_url(pg_template: PgTemplate) -> Iterator[str]:
    name = asyncio.run(pg_template.clone())
    try:
        yield pg_template.url(name)
    finally:
        asyncio.run(pg_template.drop(name))


def _spawn(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.chaos.payments.worker"], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _counts(engine) -> dict[str, int]:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        rows = await conn.execute(select(payments.c.state, func.count()).group_by(
            payments.c.state))
        return {state: n for state, n in rows.all()}


def test_chaos_kill_dispatchers_and_inject_every_fault(pg_url: str, instance: Path,
                                                       tmp_path: Path) -> None:
    rng = random.Random(20261121)
    hub_port = free_port()
    hub_url = f"http://127.0.0.1:{hub_port}"
    faults = {"merchantrade": Faults(seed=3), "iso20022": Faults(seed=4)}
    for f in faults.values():
        for fault, options in FAULTS:
            f.add(fault, rate=0.03, **options)
        f.add("lost_callback", rate=0.2)
        f.add("duplicate_callback", rate=0.2)
    sims = start_rail_sims(list(faults), hub_url=hub_url, tick_seconds=0.3, faults=faults)
    rails_file = write_rails_file(tmp_path / "rails.toml", sims.urls(), read_timeout=0.5,
                                  poll_after=0.5, poll_max=2.0, batch_size=50,
                                  max_concurrency=16)
    settings = Settings(database_url=pg_url, partners_file=instance / "partners.toml",
                        signing_key_file=instance / "hub.jwk.json", rails_file=rails_file,
                        dispatch_in_serve=False)
    env = {**os.environ, "GATEWAY_DATABASE_URL": pg_url,
           "GATEWAY_PARTNERS_FILE": str(instance / "partners.toml"),
           "GATEWAY_SIGNING_KEY_FILE": str(instance / "hub.jwk.json"),
           "GATEWAY_RAILS_FILE": str(rails_file), "GATEWAY_LOG_LEVEL": "WARNING"}
    server = LoopbackServer(create_app(settings), port=hub_port).start()
    workers: list[subprocess.Popen[bytes]] = []
    expected: dict[str, str] = {}  # payment id -> account kind (FAIL, RET-, or a wallet)
    kills = 0

    async def scenario() -> dict[str, str]:
        nonlocal kills
        hub = build_hub(settings)
        try:
            for start in range(0, N, 100):
                async with hub.uow() as uow:
                    for i in range(start, start + 100):
                        account = ("FAIL-%04d" if i % 50 == 7 else "RET-%04d" if i % 50 == 9
                                   else "6012%07d") % i
                        rail = "iso20022" if i % 3 == 0 else "merchantrade"
                        pid = f"CHAOS-{i:05d}"
                        expected[pid] = account[:4]
                        await hub.payments.service.instruct(uow.conn, PaymentIn.model_validate(
                            payment_body(pid, partner_id=None, rail=rail, payout={
                                "provider": "MTWALLET", "account": account,
                                "account_name": "Worker"})), hub.clock())
                    await uow.commit()
            workers.extend(_spawn(env) for _ in range(WORKERS))
            deadline = time.monotonic() + 150
            chaos_until = time.monotonic() + 25
            while time.monotonic() < deadline:
                await asyncio.sleep(rng.uniform(0.3, 1.5))
                if time.monotonic() < chaos_until:
                    victim = rng.randrange(len(workers))
                    os.kill(workers[victim].pid, signal.SIGKILL)  # no cleanup, no lease release
                    workers[victim].wait()
                    kills += 1
                    workers[victim] = _spawn(env)
                counts = await _counts(hub.engine)
                if sum(counts.get(s, 0) for s in ("paid", "failed", "returned")) == N:
                    break
            async with hub.engine.connect() as conn:
                states = {r.idempotency_key: r.state for r in await conn.execute(
                    select(payments.c.idempotency_key, payments.c.state))}
                dead = (await conn.execute(select(func.count()).where(
                    outbox.c.state == "dead"))).scalar()
            assert dead == 0
            return states
        finally:
            await hub.close()

    try:
        states = asyncio.run(scenario())
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(10)
            except subprocess.TimeoutExpired:
                w.kill()
        server.stop()
        ledger = sims.ledger()
        sims.stop()
    assert kills >= 10
    assert len(states) == N
    assert all(n <= 1 for n in ledger.values()), "a payout was paid twice"
    assert set(ledger) <= set(states), "a rail paid a payout the gateway does not know"
    for key, state in states.items():
        assert ledger.get(key, 0) == (1 if state in ("paid", "returned") else 0), (key, state)
        kind = expected[key]
        if kind == "FAIL":
            assert state == "failed", (key, state)
        elif kind == "RET-":
            assert state in ("paid", "returned"), (key, state)
        else:
            assert state == "paid", (key, state)
    fired = set(faults["merchantrade"].fired) | set(faults["iso20022"].fired)
    assert {f for f, _ in FAULTS} <= fired, fired
