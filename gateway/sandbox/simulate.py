"""Run a partner simulator on its own (``gateway simulate partner <ID>``), for demos and benches.

The partner's adapter name in the registry picks its simulator module
(``gateway.sandbox.simulators.PARTNER_SIMULATORS``); its private key is the development key next
to the registry (``keys/<ID>.private.jwk.json``, written by ``gateway serve``). The hub's public
keys are fetched from ``<hub>/.well-known/jwks.json`` on first use. A pull partner also polls
the hub's inbox every ``poll_every`` seconds and acknowledges what it fetched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.partners.common.simulator import PartnerSimulator
from gateway.composition import partner_adapters
from gateway.errors import ConfigError
from gateway.protocol.keys import load_signer
from gateway.protocol.partners import load_registry
from gateway.runtime.bootstrap import dev_key_path
from gateway.sandbox.simulators import PARTNER_SIMULATORS

__all__ = ["build_partner_simulator", "run_partner_simulator"]

log = logging.getLogger(__name__)


def build_partner_simulator(partner_id: str, registry_file: Path,
                            hub_url: str) -> tuple[PartnerSimulator, str]:
    """Build the simulator of a registered partner; return it and the partner's mode."""
    registry = load_registry(registry_file, frozenset(partner_adapters()))
    partner = registry.get(partner_id)
    if partner is None:
        known = ", ".join(sorted(p.id for p in registry))
        raise ConfigError(f"partner {partner_id!r} is not in {registry_file} (one of {known})")
    build = PARTNER_SIMULATORS.get(partner.adapter)
    if build is None:
        raise ConfigError(f"adapter {partner.adapter!r} of {partner_id} has no simulator")
    key = dev_key_path(registry_file, partner_id)
    if not key.exists():
        raise ConfigError(f"no private key for {partner_id} at {key}: the simulator signs with "
                          "the development key that `gateway serve` writes")
    sim = build(partner_id, load_signer(key, partner_id), hub_url=hub_url)
    return sim, partner.mode


class _WithPolling:
    """The simulator's app, plus the inbox polling loop of a pull partner in its lifespan."""

    def __init__(self, sim: PartnerSimulator, every: float) -> None:
        self.sim, self.every = sim, every

    @contextlib.asynccontextmanager
    async def _polling(self) -> AsyncIterator[None]:
        async with httpx.AsyncClient() as client:
            task = asyncio.create_task(self.sim.poll_forever(client, self.every))
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            async with self._polling():
                while True:
                    message = await receive()
                    if message["type"] == "lifespan.startup":
                        await send({"type": "lifespan.startup.complete"})
                    elif message["type"] == "lifespan.shutdown":
                        await send({"type": "lifespan.shutdown.complete"})
                        return
        await self.sim.app(scope, receive, send)


def run_partner_simulator(partner_id: str, *, port: int, hub_url: str, registry_file: Path,
                          host: str = "127.0.0.1", poll_every: float = 2.0) -> None:
    """Serve a partner's simulator until interrupted."""
    sim, mode = build_partner_simulator(partner_id, registry_file, hub_url)
    # A pull partner polls every few seconds: a log line per request would bury what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app: ASGIApp = _WithPolling(sim, poll_every) if mode == "pull" else sim.app
    log.info("%s simulator (%s, %s) on http://%s:%d, hub %s", partner_id, sim.adapter.name,
             mode, host, port, hub_url)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
