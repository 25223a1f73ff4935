"""Crash and chaos (PostgreSQL): 1,000 payments and 20 pension schedules through several
dispatcher processes while the test kill -9s dispatchers at random moments, both rail
simulators inject every fault, and, while payouts are in flight, the back office cancels
payments, partners change beneficiaries' accounts and notify deaths, and the rails return paid
payouts. Then, for every payment, the gateway's final state, amount and account equal the
rail's ledger, every contradiction is an open discrepancy, and nothing is paid twice.

The seed (``GATEWAY_CHAOS_SEED``, default 20261121) drives every random choice of the test and
is named in every failure message. Bounded: the whole test takes about two minutes."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from adapters.simulation import Faults, LoopbackServer, free_port
from gateway.app import create_app
from gateway.backoffice.auth import write_dev_tokens
from gateway.composition import build_hub, inbound_processors
from gateway.config import Settings
from gateway.money import Money
from gateway.payments import pensions
from gateway.payments.requests import PaymentIn, PensionIn
from gateway.ports.processing import ProcessingContext
from gateway.ports.rail import PayoutState
from gateway.protocol.envelope import Envelope
from gateway.sandbox.rails import start_rail_sims, write_rails_file
from gateway.storage.tables import outbox, payment_discrepancies, payment_events, payments
from tests.support.databases import PgTemplate
from tests.support.payments import payment_body

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

N = 1000
SCHEDULES = 20
WORKERS = 3
SEED = int(os.environ.get("GATEWAY_CHAOS_SEED", "20261121"))
PARTNER = "ID-BPJSTK"
NIK = {"scheme": "ID-NIK", "value": "3201145403910002"}
FINAL = ("paid", "failed", "returned", "cancelled")
STOPS = ("cancelled", "death_notified")  # causes of a stop asked by the hub
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


async def _process(hub: Any, type_: str, payload: dict[str, object]) -> None:
    """Apply a partner message as inbound processing does (in its own unit of work)."""
    env = Envelope.model_validate({
        "id": "0193a3c4-6f1e-7c2a-9b1d-2f4e5a6b7c8d", "type": type_, "version": 1,
        "sender": PARTNER, "recipient": "MY-PERKESO", "sent_at": "2026-11-21T08:15:30Z",
        "payload": payload})
    async with hub.uow() as uow:
        await inbound_processors()[type_](ProcessingContext(uow.conn, hub.clock(), 0, PARTNER,
                                                            hub.outbound), env)
        await uow.commit()


_RAIL_TO_GATEWAY = {PayoutState.paid: "paid", PayoutState.failed: "failed",
                    PayoutState.returned: "returned", PayoutState.cancelled: "cancelled"}


def _truth_agrees(row: Any, entry: Any) -> bool:
    """Does the gateway's record of one payment say what the rail did?"""
    if entry is None:
        return bool(row.state == "cancelled")  # never reached the rail
    if _RAIL_TO_GATEWAY.get(entry.state) != row.state:
        return False
    if entry.amount is None:  # cancelled before it arrived: nothing was sent
        return True
    amount = Money(row.amount_minor, row.currency).amount_str()
    return bool(entry.amount == amount and entry.currency == row.currency
                and entry.account == row.account)


def test_chaos_kill_dispatchers_and_inject_every_fault(pg_url: str, instance: Path,
                                                       tmp_path: Path) -> None:
    rng = random.Random(SEED)
    where = f"(chaos seed {SEED}: rerun with GATEWAY_CHAOS_SEED={SEED})"
    hub_port = free_port()
    hub_url = f"http://127.0.0.1:{hub_port}"
    faults = {"merchantrade": Faults(seed=SEED + 3), "iso20022": Faults(seed=SEED + 4)}
    for f in faults.values():
        for fault, options in FAULTS:
            f.add(fault, rate=0.03, **options)
        f.add("lost_callback", rate=0.2)
        f.add("duplicate_callback", rate=0.2)
    sims = start_rail_sims(list(faults), hub_url=hub_url, tick_seconds=0.3, faults=faults)
    rails_file = write_rails_file(tmp_path / "rails.toml", sims.urls(), read_timeout=0.5,
                                  poll_after=0.5, poll_max=2.0, batch_size=50,
                                  max_concurrency=16, return_poll=5.0)
    token, _ = write_dev_tokens(instance / "backoffice.toml")
    settings = Settings(database_url=pg_url, partners_file=instance / "partners.toml",
                        signing_key_file=instance / "hub.jwk.json", rails_file=rails_file,
                        backoffice_tokens_file=instance / "backoffice.toml",
                        dispatch_in_serve=False)
    env = {**os.environ, "GATEWAY_DATABASE_URL": pg_url,
           "GATEWAY_PARTNERS_FILE": str(instance / "partners.toml"),
           "GATEWAY_SIGNING_KEY_FILE": str(instance / "hub.jwk.json"),
           "GATEWAY_RAILS_FILE": str(rails_file), "GATEWAY_LOG_LEVEL": "WARNING"}
    server = LoopbackServer(create_app(settings), port=hub_port).start()
    workers: list[subprocess.Popen[bytes]] = []
    claims: list[str] = []  # claim refs of the partner's payments (beneficiary.update targets)
    kills = 0
    actions: dict[str, int] = {"cancel": 0, "beneficiary.update": 0, "death.notify": 0}

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], set[tuple[str, str]],
                                  set[str], int]:
        nonlocal kills
        hub = build_hub(settings)
        api = httpx.AsyncClient(base_url=hub_url, timeout=10,
                                headers={"Authorization": f"Bearer {token}"})
        try:
            now = hub.clock()
            for start in range(0, N, 100):
                async with hub.uow() as uow:
                    for i in range(start, start + 100):
                        roll = rng.random()  # returns and failures at random, not by index
                        account = ("FAIL-%04d" if roll < 0.02 else "RET-%04d" if roll < 0.06
                                   else "6012%07d") % i
                        rail = "iso20022" if i % 3 == 0 else "merchantrade"
                        pid = f"CHAOS-{i:05d}"
                        body = payment_body(pid, partner_id=None, rail=rail, payout={
                            "provider": "MTWALLET", "account": account,
                            "account_name": "Worker"})
                        if i % 10 == 1:  # the partner's own claims: it may change the account
                            body.update(partner_id=PARTNER, claim_ref=f"CLM-CHAOS-{i:05d}")
                            claims.append(body["claim_ref"])
                        await hub.payments.service.instruct(
                            uow.conn, PaymentIn.model_validate(body), now)
                    await uow.commit()
            first = now.date().replace(day=1)
            start_on = (first - timedelta(days=70)).replace(day=1)
            async with hub.uow() as uow:
                for k in range(SCHEDULES):
                    await pensions.create_schedule(uow.conn, hub.payments.service,
                                                   PensionIn.model_validate({
                        "pension_ref": f"PEN-CHAOS-{k:03d}", "partner_id": PARTNER,
                        "beneficiary": {"name": "Siti Aminah", "national_id": NIK},
                        "benefit": "INV_PENSION",
                        "monthly_amount": {"amount": "550.00", "currency": "MYR"},
                        "start_on": start_on.isoformat(), "rail": "merchantrade",
                        "payout": {"provider": "MTWALLET", "account": f"6013{k:07d}",
                                   "account_name": "Siti"}}), now)
                await pensions.run_due(uow.conn, hub.payments.service,
                                       pensions.local_today(now), now)
                await uow.commit()
            async with hub.engine.connect() as conn:
                ids = list((await conn.execute(select(payments.c.payment_id))).scalars())
            dead_pensions: set[str] = set()
            workers.extend(_spawn(env) for _ in range(WORKERS))
            deadline = time.monotonic() + 240
            chaos_until = time.monotonic() + 25
            while time.monotonic() < deadline:
                await asyncio.sleep(rng.uniform(0.3, 1.5))
                if time.monotonic() < chaos_until:
                    victim = rng.randrange(len(workers))
                    os.kill(workers[victim].pid, signal.SIGKILL)  # no cleanup, no lease release
                    workers[victim].wait()
                    kills += 1
                    workers[victim] = _spawn(env)
                    for _ in range(rng.randrange(1, 6)):  # business events while in flight
                        what = rng.choice(list(actions))
                        if what == "cancel":
                            r = await api.post(f"/v1/backoffice/payments/{rng.choice(ids)}"
                                               "/cancel", json={"reason": "chaos"})
                            assert r.status_code in (200, 202, 409), (r.text, where)
                        elif what == "beneficiary.update":
                            await _process(hub, "beneficiary.update", {
                                "claim_ref": rng.choice(claims),
                                "payout": {"method": "ewallet", "provider": "MTWALLET",
                                           "account": f"6019{rng.randrange(10**7):07d}",
                                           "account_name": "Worker"}})
                        else:
                            ref = f"PEN-CHAOS-{rng.randrange(SCHEDULES):03d}"
                            dead_pensions.add(ref)
                            await _process(hub, "death.notify", {
                                "pension_ref": ref,
                                "person": {"name": "Siti Aminah", "national_id": NIK},
                                "died_on": (first - timedelta(days=40)).isoformat(),
                                "documents": []})
                        actions[what] += 1
                    continue
                async with hub.engine.connect() as conn:
                    rows = list((await conn.execute(select(payments))).mappings())
                if all(r.state in FINAL and _truth_agrees(r, sims.entry(r.idempotency_key))
                       for r in rows):
                    break
            async with hub.engine.connect() as conn:
                rows = list((await conn.execute(select(payments))).mappings())
                stopped = {(r.payment_id) for r in (await conn.execute(
                    select(payments.c.payment_id).join(
                        payment_events, payment_events.c.payment_pk == payments.c.pk).where(
                        payment_events.c.cause.in_(STOPS)))).all()}
                open_ = {(r.payment_id, r.kind) for r in (await conn.execute(select(
                    payment_discrepancies).where(payment_discrepancies.c.state == "open",
                                                 payment_discrepancies.c.overpayment)))}
                dead = (await conn.execute(select(func.count()).where(
                    outbox.c.state == "dead", outbox.c.kind == "payout"))).scalar()
            entries = {r.idempotency_key: sims.entry(r.idempotency_key) for r in rows}
            return ({r.idempotency_key: r for r in rows}, entries, open_, stopped, int(dead or 0))
        finally:
            await api.aclose()
            await hub.close()

    try:
        rows, entries, open_, stopped, dead = asyncio.run(scenario())
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
    assert dead == 0, f"{dead} payout task(s) dead-lettered {where}"
    assert kills >= 10, where
    assert all(n >= 5 for n in actions.values()), (actions, where)
    assert len(rows) > N, where
    assert all(n <= 1 for n in ledger.values()), f"a payout was paid twice {where}"
    assert set(ledger) <= set(rows), f"a rail paid a payout the gateway does not know {where}"
    states: dict[str, int] = {}
    for row in rows.values():
        states[row.state] = states.get(row.state, 0) + 1
    where = f"{where} final states {states}"
    for key, row in rows.items():
        entry = entries[key]
        assert row.state in FINAL, (key, row.state, entry, where)
        assert _truth_agrees(row, entry), (key, row.state, entry, where)
        paid = row.state in ("paid", "returned")
        assert ledger.get(key, 0) == (1 if paid else 0), (key, row.state, where)
        if paid and row.payment_id in stopped:
            assert any(pid == row.payment_id for pid, _ in open_), (
                f"{key} was paid after a stop with no open discrepancy {where}")
    fired = set(faults["merchantrade"].fired) | set(faults["iso20022"].fired)
    assert {f for f, _ in FAULTS} <= fired, (fired, where)
