"""Scale-out on one PostgreSQL (PostgreSQL only): two ``gateway serve`` processes behind a
loopback nginx, two ``gateway dispatch`` processes, the ID-BPJSTK partner simulator and the
Merchantrade rail simulator. Continuous signed claims and back-office payouts go through the
proxy; mid-load one server and one dispatcher are killed with SIGKILL. Senders resend whatever
was not acknowledged, as partners do. After the survivors catch up:

- every message the hub acknowledged (a 2xx receipt) is stored once and processed exactly once:
  one claim per claim_ref, one ``claim.status`` per claim in the hub's store and at the partner;
- no payout is paid twice at the rail (its ledger), and every acknowledged payment is paid;
- nothing is dead-lettered.

Bounded: about 20 s of load, then at most 90 s for the survivors to catch up (the killed
dispatcher's leases are 3 s here, ``GATEWAY_DISPATCH_LEASE_SECONDS``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.simulation import LoopbackServer, free_port
from gateway.backoffice.auth import write_dev_tokens
from gateway.protocol.envelope import HUB_PARTY
from gateway.protocol.keys import load_signer
from gateway.protocol.signing import KeyRing
from gateway.runtime.bootstrap import DEV_PARTNERS, dev_key_path, write_dev_registry
from gateway.sandbox.rails import start_rail_sims, write_rails_file
from gateway.sandbox.simulators import PARTNER_SIMULATORS
from gateway.storage.tables import claims, messages, outbox, payments
from tests.support.databases import PgTemplate
from tests.support.partners import TestPartner, claim_payload
from tests.support.payments import payment_body
from tests.support.processes import GATEWAY, Server, gateway_env
from tests.support.proxy import Nginx, nginx_binary

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

PARTNER = "ID-BPJSTK"
LOAD_SECONDS = 20.0
KILL_AT = 7.0  # seconds into the load
CATCH_UP_SECONDS = 90.0
CLAIM_SENDERS = 4


@pytest.fixture
def pg_url(pg_template: PgTemplate) -> Iterator[str]:
    name = asyncio.run(pg_template.clone())
    try:
        yield pg_template.url(name)
    finally:
        asyncio.run(pg_template.drop(name))


@dataclasses.dataclass
class Sent:
    """What the senders sent and what the hub acknowledged."""

    claims: dict[str, tuple[str, bytes, dict[str, str]]] = dataclasses.field(
        default_factory=dict)  # claim_ref -> (message id, body, headers)
    acked_claims: set[str] = dataclasses.field(default_factory=set)  # claim_refs
    payments: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # id -> body
    acked_payments: set[str] = dataclasses.field(default_factory=set)
    acked_after_kill: int = 0
    refused: Counter[str] = dataclasses.field(default_factory=Counter)


def _dispatcher(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    log = open(cwd / f"dispatch-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(GATEWAY + ["dispatch"], env=env, cwd=cwd, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


async def _post_claim(http: httpx.AsyncClient, sent: Sent, ref: str, killed: bool) -> bool:
    _, body, headers = sent.claims[ref]
    try:
        r = await http.post("/v1/messages", content=body, headers=headers)
    except httpx.HTTPError as exc:  # the server died under the request: not acknowledged
        sent.refused[type(exc).__name__] += 1
        return False
    if r.status_code in (200, 202):
        sent.acked_claims.add(ref)
        sent.acked_after_kill += killed
        return True
    sent.refused[str(r.status_code)] += 1
    assert r.status_code in (502, 503, 504), (r.status_code, r.text)
    return False


async def _post_payment(http: httpx.AsyncClient, sent: Sent, pid: str, token: str,
                        killed: bool) -> bool:
    try:
        r = await http.post("/v1/backoffice/payments", json=sent.payments[pid],
                            headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        sent.refused[type(exc).__name__] += 1
        return False
    if r.status_code in (200, 201):
        sent.acked_payments.add(pid)
        sent.acked_after_kill += killed
        return True
    sent.refused[str(r.status_code)] += 1
    assert r.status_code in (502, 503, 504), (r.status_code, r.text)
    return False


def test_two_servers_two_dispatchers_survive_sigkill(pg_url: str, tmp_path: Path) -> None:
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light; .ci/run installs it)")
    instance = tmp_path / "instance"
    instance.mkdir()
    from gateway.protocol.keys import write_private_key

    write_private_key(instance / "hub.jwk.json", "MY-PERKESO-test-1")
    sim_port = free_port()
    write_dev_registry(instance / "partners.toml", tuple(
        dataclasses.replace(p, port=sim_port) if p.id == PARTNER else p for p in DEV_PARTNERS))
    token, _ = write_dev_tokens(instance / "backoffice.toml")
    ports = [free_port(), free_port()]
    proxy = Nginx(tmp_path / "nginx", ports)
    rails = start_rail_sims(["merchantrade"], hub_url=proxy.url, tick_seconds=0.3)
    rails_file = write_rails_file(instance / "rails.toml", rails.urls(), read_timeout=2.0,
                                  poll_after=0.5, poll_max=2.0, batch_size=50,
                                  max_concurrency=16)
    hub_ring = KeyRing()
    hub_ring.add_keyset(HUB_PARTY, load_signer(instance / "hub.jwk.json", HUB_PARTY).jwks())
    partner_sim = PARTNER_SIMULATORS["px1"](
        PARTNER, load_signer(dev_key_path(instance / "partners.toml", PARTNER), PARTNER),
        hub_url=proxy.url, hub_keys=hub_ring)
    sim_server = LoopbackServer(partner_sim.app, port=sim_port).start()
    env = gateway_env(instance, pg_url, GATEWAY_DISPATCH_IN_SERVE="false",
                      GATEWAY_RAILS_FILE=str(rails_file),
                      GATEWAY_BACKOFFICE_TOKENS_FILE=str(instance / "backoffice.toml"),
                      GATEWAY_DISPATCH_LEASE_SECONDS="3")
    servers: list[Server] = []
    dispatchers: list[subprocess.Popen[bytes]] = []
    partner = TestPartner.from_registry(instance / "partners.toml", PARTNER)
    sent = Sent()

    async def load() -> None:
        limits = httpx.Limits(max_connections=CLAIM_SENDERS + 2)
        async with httpx.AsyncClient(base_url=proxy.url, timeout=30, limits=limits) as http:
            start = time.monotonic()
            killed = False
            counter = 0

            async def claims_sender(k: int) -> None:
                nonlocal counter
                while time.monotonic() - start < LOAD_SECONDS:
                    counter += 1
                    ref = f"SCALE-{k}-{counter:06d}"
                    env_ = partner.envelope(payload=claim_payload(ref), correlation_id=ref,
                                            sent_at=datetime.now(UTC))
                    body, headers = partner.signed(env_)
                    sent.claims[ref] = (env_["id"], body, headers)
                    await _post_claim(http, sent, ref, killed)

            async def payments_sender() -> None:
                i = 0
                while time.monotonic() - start < LOAD_SECONDS:
                    i += 1
                    pid = f"PAY-SCALE-{i:05d}"
                    sent.payments[pid] = payment_body(
                        pid, partner_id=None, rail="merchantrade",
                        payout={"provider": "MTWALLET", "account": f"6012{i:07d}",
                                "account_name": "Worker"})
                    await _post_payment(http, sent, pid, token, killed)
                    await asyncio.sleep(0.02)

            async def killer() -> None:
                nonlocal killed
                await asyncio.sleep(KILL_AT)
                assert servers[0].proc.poll() is None and dispatchers[0].poll() is None
                assert sent.acked_claims and sent.acked_payments, sent.refused
                os.kill(servers[0].proc.pid, signal.SIGKILL)  # no shutdown, no lease release
                os.kill(dispatchers[0].pid, signal.SIGKILL)
                killed = True

            await asyncio.gather(*[claims_sender(k) for k in range(CLAIM_SENDERS)],
                                 payments_sender(), killer())
            # Partners and the back office resend what was not acknowledged (same bytes).
            for _ in range(5):
                missing = [r for r in sent.claims if r not in sent.acked_claims]
                unpaid = [p for p in sent.payments if p not in sent.acked_payments]
                if not missing and not unpaid:
                    break
                for ref in missing:
                    await _post_claim(http, sent, ref, True)
                for pid in unpaid:
                    await _post_payment(http, sent, pid, token, True)

    async def caught_up() -> dict[str, Any]:
        engine = create_async_engine(pg_url)
        try:
            deadline = time.monotonic() + CATCH_UP_SECONDS
            while True:
                async with engine.connect() as conn:
                    open_work = (await conn.execute(select(func.count()).where(
                        outbox.c.kind.in_(["process_inbound", "deliver"]),
                        outbox.c.state != "done"))).scalar()
                    states = dict((await conn.execute(select(
                        payments.c.state, func.count()).group_by(payments.c.state))).all())
                delivered = {e["correlation_id"] for e in list(partner_sim.received.values())
                             if e["type"] == "claim.status"}
                if (open_work == 0 and set(states) <= {"paid"}
                        and sent.acked_claims <= delivered) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            async with engine.connect() as conn:
                return {
                    "inbound": Counter(r.message_id for r in (await conn.execute(
                        select(messages.c.message_id).where(messages.c.direction == "in",
                                                            messages.c.type == "claim.notify")
                    )).all()),
                    "claims": Counter(r.claim_ref for r in (await conn.execute(
                        select(claims.c.claim_ref))).all()),
                    "statuses": Counter(r.correlation_id for r in (await conn.execute(
                        select(messages.c.correlation_id).where(
                            messages.c.direction == "out", messages.c.type == "claim.status")
                    )).all()),
                    "payments": dict((await conn.execute(
                        select(payments.c.payment_id, payments.c.state))).all()),
                    "keys": dict((await conn.execute(
                        select(payments.c.payment_id, payments.c.idempotency_key))).all()),
                    "dead": (await conn.execute(select(func.count()).where(
                        outbox.c.state == "dead"))).scalar(),
                    "open": (await conn.execute(select(func.count()).where(
                        outbox.c.kind.in_(["process_inbound", "deliver"]),
                        outbox.c.state != "done"))).scalar(),
                }
        finally:
            await engine.dispose()

    try:
        servers.extend(Server(env, instance, port) for port in ports)
        dispatchers.extend(_dispatcher(env, instance) for _ in range(2))
        asyncio.run(load())
        stored = asyncio.run(caught_up())
        survivors_alive = servers[1].proc.poll() is None and dispatchers[1].poll() is None
    finally:
        for d in dispatchers:
            if d.poll() is None:
                d.send_signal(signal.SIGTERM)
        for d in dispatchers:
            try:
                d.wait(10)
            except subprocess.TimeoutExpired:
                d.kill()
        for s in servers:
            s.stop()
        proxy.stop()
        sim_server.stop()
        ledger = rails.ledger()
        rails.stop()

    where = (f"{len(sent.acked_claims)} claims and {len(sent.acked_payments)} payments "
             f"acknowledged, not acknowledged at first: {dict(sent.refused)}")
    assert survivors_alive, where
    assert sent.acked_after_kill > 0, f"the survivor acknowledged nothing after the kill; {where}"
    assert sum(sent.refused.values()) < len(sent.claims), where  # the proxy routed around it
    assert sent.acked_claims == set(sent.claims), f"a claim was never acknowledged; {where}"
    assert sent.acked_payments == set(sent.payments), where
    assert stored["dead"] == 0 and stored["open"] == 0, (stored["dead"], stored["open"], where)
    # Stored once, processed exactly once.
    for ref in sent.acked_claims:
        message_id = sent.claims[ref][0]
        assert stored["inbound"][message_id] == 1, (ref, where)
        assert stored["claims"][ref] == 1, (ref, where)
        assert stored["statuses"][ref] == 1, f"{ref}: {stored['statuses'][ref]} claim.status"
    assert set(stored["claims"]) == sent.acked_claims, where
    at_partner = Counter(e["correlation_id"] for e in list(partner_sim.received.values())
                         if e["type"] == "claim.status")
    assert at_partner == Counter(sent.acked_claims), "the partner's claim.status per claim"
    # Paid once each, at the rail's own ledger; every acknowledged payment final (paid).
    assert set(stored["payments"]) == sent.acked_payments, where
    assert all(state == "paid" for state in stored["payments"].values()), Counter(
        stored["payments"].values())
    assert all(n <= 1 for n in ledger.values()), "a payout was paid twice"
    assert all(ledger.get(stored["keys"][pid]) == 1 for pid in sent.acked_payments), where
    assert orjson.dumps(sorted(ledger)) == orjson.dumps(sorted(stored["keys"].values()))
