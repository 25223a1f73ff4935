"""Payouts through the real rail adapters and their loopback simulators, with every request
and callback fault injected; afterwards the simulator's ledger and the gateway's agree exactly.

The hub serves its API (back office and rail callbacks) on loopback in a thread; the test runs
the dispatcher. On SQLite and PostgreSQL, for both rails.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from adapters.simulation import Faults, LoopbackServer, free_port
from gateway.app import create_app
from gateway.composition import Hub, build_hub
from gateway.config import Settings
from gateway.outbox.breaker import CircuitBreakers
from gateway.outbox.dispatcher import Dispatcher
from gateway.outbox.retry import RetryPolicy
from gateway.sandbox.rails import start_rail_sims, write_rails_file
from gateway.storage.tables import payments
from tests.support.payments import payment_body

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

REQUEST_FAULTS = [("latency", {"seconds": 0.05}), ("timeout", {"seconds": 1.0}),
                  ("error_before", {"status": 503}), ("error_after", {"status": 500}),
                  ("reset_before", {}), ("reset_after", {}), ("throttle", {"status": 429})]
CALLBACK_FAULTS = ["lost_callback", "duplicate_callback"]


def fast_dispatcher(hub: Hub) -> Dispatcher:
    """The production dispatcher with test-sized waits (the same policy, shorter numbers)."""
    return Dispatcher(hub.uow, hub.handlers(), clock=hub.clock, batch=50,
                      policy=RetryPolicy(initial=0.05, max_delay=0.5, unknown_initial=0.05),
                      breakers=CircuitBreakers(threshold=50, cooldown=0.2), idle_sleep=0.02)


async def ledgers_agree(hub: Hub, ledger: dict[str, int]) -> dict[str, str]:
    """Every payment paid by the rail exactly once iff the gateway has it paid or returned."""
    async with hub.engine.connect() as conn:
        rows = (await conn.execute(select(payments.c.idempotency_key, payments.c.state))).all()
    states = {r.idempotency_key: r.state for r in rows}
    assert all(n <= 1 for n in ledger.values()), "a payout was paid twice"
    assert set(ledger) <= set(states), "the rail has a payout the gateway does not know"
    for key, state in states.items():
        expected = 1 if state in ("paid", "returned") else 0
        assert ledger.get(key, 0) == expected, (key, state, ledger.get(key))
    return states


@pytest.mark.parametrize("rail_name", ["merchantrade", "iso20022"])
async def test_payouts_with_every_fault(rail_name: str, db_url: str, instance: Path,
                                        tmp_path: Path) -> None:
    from gateway.backoffice.auth import write_dev_tokens

    token, _ = write_dev_tokens(instance / "backoffice.toml")
    hub_port = free_port()
    hub_url = f"http://127.0.0.1:{hub_port}"
    faults = Faults(seed=11)
    sims = start_rail_sims([rail_name], hub_url=hub_url, tick_seconds=0.15,
                           faults={rail_name: faults})
    settings = Settings(
        database_url=db_url, partners_file=instance / "partners.toml",
        signing_key_file=instance / "hub.jwk.json",
        backoffice_tokens_file=instance / "backoffice.toml", dispatch_in_serve=False,
        rails_file=write_rails_file(tmp_path / "rails.toml", sims.urls(), read_timeout=0.5,
                                    poll_after=0.3, poll_max=1.0, batch_size=10))
    server = LoopbackServer(create_app(settings), port=hub_port).start()
    hub = build_hub(settings)
    stop = asyncio.Event()
    try:
        for fault, options in REQUEST_FAULTS:
            faults.add(fault, rate=0.5, count=3, **options)
        for fault in CALLBACK_FAULTS:
            faults.add(fault, rate=0.3, count=5)
        accounts = ["60123400000"] * 24 + ["FAIL-0001"] * 3 + ["RET-0001"] * 3
        async with httpx.AsyncClient(base_url=hub_url,
                                     headers={"Authorization": f"Bearer {token}"}) as api:
            for i, account in enumerate(accounts):
                body = payment_body(f"E2E-{i:03d}", partner_id=None, rail=rail_name,
                                    payout={"provider": "MTWALLET", "account": account,
                                            "account_name": "Worker"})
                r = await api.post("/v1/backoffice/payments", json=body)
                assert r.status_code == 201, r.text
            runner = asyncio.create_task(fast_dispatcher(hub).run(stop))
            deadline = time.monotonic() + 90
            final = {"paid", "failed", "returned"}
            while time.monotonic() < deadline:
                r = await api.get("/v1/backoffice/payments", params={"limit": 500})
                states = [p["state"] for p in r.json()["payments"]]
                if all(s in final for s in states):
                    break
                await asyncio.sleep(0.2)
            stop.set()
            await runner
        states_by_key = await ledgers_agree(hub, sims.ledger())
        assert all(s in final for s in states_by_key.values()), states_by_key
        for i, account in enumerate(accounts):
            state = states_by_key[f"E2E-{i:03d}"]
            if account.startswith("FAIL"):
                assert state == "failed"
            elif account.startswith("RET"):
                assert state in ("paid", "returned")
            else:
                assert state == "paid"
        fired = set(faults.fired)
        assert {f for f, _ in REQUEST_FAULTS} <= fired, fired
    finally:
        stop.set()
        await hub.close()
        server.stop()
        sims.stop()
