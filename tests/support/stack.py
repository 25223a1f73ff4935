"""A hub and all five partner simulators on loopback, driven by a fake clock."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from adapters.partners.common.simulator import PartnerSimulator
from adapters.simulation import LoopbackServer, bind
from gateway.app import create_app
from gateway.composition import Hub, build_hub
from gateway.config import Settings
from gateway.outbox.breaker import CircuitBreakers
from gateway.outbox.dispatcher import Dispatcher
from gateway.outbox.retry import RetryPolicy
from gateway.protocol.envelope import HUB_PARTY
from gateway.protocol.keys import load_signer, write_private_key
from gateway.protocol.signing import KeyRing
from gateway.runtime.bootstrap import DEV_PARTNERS, dev_key_path, write_dev_registry
from gateway.sandbox.simulators import PARTNER_SIMULATORS

__all__ = ["Stack", "running_stack"]


@dataclass
class Stack:
    hub: Hub
    hub_url: str
    sims: dict[str, PartnerSimulator]
    client: httpx.AsyncClient
    dispatcher: Dispatcher
    clock: Any

    async def pump(self, rounds: int = 50) -> int:
        """Run the dispatcher until nothing is due (bounded); return tasks handled."""
        total = 0
        for _ in range(rounds):
            n = await self.dispatcher.run_once()
            if n == 0:
                break
            total += n
        return total

    async def send_hub_message(self, partner_id: str, type_: str, payload: dict[str, Any],
                               correlation_id: str | None) -> str:
        async with self.hub.uow() as uow:
            out = await self.hub.outbound.send(
                uow.conn, partner_id=partner_id, type_=type_, payload=payload,
                now=self.clock(), correlation_id=correlation_id)
            await uow.commit()
        return out.message_id


def hub_ring(hub: Hub) -> KeyRing:
    ring = KeyRing()
    ring.add_keyset(HUB_PARTY, hub.signer.jwks())
    return ring


def simulator_for(registry_file: Path, partner_id: str, adapter: str, hub: Hub, hub_url: str,
                  clock: Any) -> PartnerSimulator:
    signer = load_signer(dev_key_path(registry_file, partner_id), partner_id)
    sim: PartnerSimulator = PARTNER_SIMULATORS[adapter](partner_id, signer, hub_url=hub_url,
                                                        hub_keys=hub_ring(hub), clock=clock)
    return sim


@contextlib.asynccontextmanager
async def running_stack(folder: Path, db_url: str, clock: Any) -> AsyncIterator[Stack]:
    """Hub + simulators on ephemeral loopback ports; push partners' endpoints point at them."""
    socks = {p.id: bind() for p in DEV_PARTNERS if p.mode == "push"}
    partners = tuple(
        dataclasses.replace(p, port=socks[p.id].getsockname()[1]) if p.id in socks else p
        for p in DEV_PARTNERS)
    write_private_key(folder / "hub.jwk.json", "MY-PERKESO-test-1")
    write_dev_registry(folder / "partners.toml", partners)
    settings = Settings(database_url=db_url, partners_file=folder / "partners.toml",
                        signing_key_file=folder / "hub.jwk.json", dispatch_in_serve=False)
    hub = build_hub(settings, clock=clock)
    app = create_app(hub=hub, background_jobs=False)
    dispatcher = hub.dispatcher(
        policy=RetryPolicy(initial=1.0, max_delay=300.0),
        breakers=CircuitBreakers(monotonic=lambda: clock().timestamp()))
    try:
        async with contextlib.AsyncExitStack() as stack, httpx.AsyncClient() as client:
            # In the test's own loop: the hub's engine is shared with the test.
            hub_url = (await stack.enter_async_context(
                LoopbackServer(app, lifespan="off"))).url
            sims = {}
            for p in partners:
                sims[p.id] = simulator_for(folder / "partners.toml", p.id, p.adapter, hub,
                                           hub_url, clock)
                if p.id in socks:
                    await stack.enter_async_context(
                        LoopbackServer(sims[p.id].app, sock=socks[p.id], lifespan="off"))
            yield Stack(hub, hub_url, sims, client, dispatcher, clock)
    finally:
        await hub.close()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
