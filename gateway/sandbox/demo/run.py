"""Start the hub and every simulator on loopback, play the steps, check, report, stop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from adapters.simulation import Faults, LoopbackServer
from gateway.app import create_app
from gateway.backoffice.auth import write_dev_tokens
from gateway.config import Settings
from gateway.protocol.envelope import HUB_PARTY
from gateway.protocol.keys import load_signer, write_private_key
from gateway.protocol.signing import KeyRing
from gateway.runtime.bootstrap import (
    DEV_PARTNERS,
    DevPartner,
    dev_key_path,
    prepare_instance,
    write_dev_registry,
)
from gateway.sandbox.demo.checks import final_checks
from gateway.sandbox.demo.report import summary
from gateway.sandbox.demo.scenario import PARTNER_FAULTS, RAIL_FAULTS, Progress, Scenario
from gateway.sandbox.demo.steps import Run, play
from gateway.sandbox.rails import RailSims, free_port, start_rail_sims, write_rails_file
from gateway.sandbox.simulators import PARTNER_SIMULATORS
from gateway.storage.migrate import upgrade

__all__ = ["run_demo"]


def run_demo(keep: Path | None = None, *, verbose: bool = False) -> int:
    """Run the scenario; return the process exit code (0: every invariant held)."""
    folder = keep or Path(tempfile.mkdtemp(prefix="px-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(_demo(folder, verbose))
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)


@dataclass
class _Stack:
    """What the demo runs on loopback: the hub, the partners' simulators, the rails'."""

    folder: Path
    hub_port: int = field(default_factory=free_port)
    rail_faults: dict[str, Faults] = field(default_factory=dict)
    rails: RailSims | None = None
    partners: tuple[DevPartner, ...] = ()
    ports: dict[str, int] = field(default_factory=dict)  # push partner -> its port
    servers: list[LoopbackServer] = field(default_factory=list)

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.hub_port}"

    def start_rails(self) -> RailSims:
        """Both rail simulators, each fault armed once at a 25% rate."""
        self.rail_faults = {"merchantrade": Faults(seed=5), "iso20022": Faults(seed=6)}
        for f in self.rail_faults.values():
            for fault, options in RAIL_FAULTS:
                f.add(fault, rate=0.25, count=1, **options)
        self.rails = start_rail_sims(list(self.rail_faults), hub_url=self.hub_url,
                                     tick_seconds=0.3, faults=self.rail_faults)
        return self.rails

    async def instance(self, rails: RailSims) -> tuple[Settings, str]:
        """Write the demo's own development instance (registry pointing at the simulators'
        ports) and migrate it; return its settings and the back-office token."""
        self.ports = {p.id: free_port() for p in DEV_PARTNERS if p.mode == "push"}
        self.partners = tuple(dataclasses.replace(p, port=self.ports[p.id])
                              if p.id in self.ports else p for p in DEV_PARTNERS)
        folder = self.folder
        write_private_key(folder / "hub.jwk.json", "MY-PERKESO-demo-1", "EdDSA")
        write_dev_registry(folder / "partners.toml", self.partners)
        settings = Settings(
            database_url=f"sqlite:///{folder / 'gateway.db'}",
            partners_file=folder / "partners.toml", signing_key_file=folder / "hub.jwk.json",
            backoffice_tokens_file=folder / "backoffice.toml",
            rails_file=write_rails_file(folder / "rails.toml", rails.urls(), read_timeout=0.5,
                                        poll_after=0.5, poll_max=1.0, batch_size=20),
            dispatch_in_serve=True, log_level="WARNING",
            # A demo cannot sit out the production breaker cooldown (30 s) after a burst of
            # injected faults, and it wants its pension periods within a second.
            breaker_cooldown_seconds=1.0, pension_run_every_seconds=0.5)
        token, _ = write_dev_tokens(settings.backoffice_tokens_file)
        prepare_instance(settings)
        await upgrade(settings.database_url)
        return settings, token

    def serve(self, sc: Scenario, settings: Settings) -> None:
        """Start the hub and the push partners' endpoints; build every partner simulator."""
        hub_ring = KeyRing()
        hub_ring.add_keyset(HUB_PARTY, load_signer(settings.signing_key_file, HUB_PARTY).jwks())
        self.servers.append(LoopbackServer(create_app(settings), port=self.hub_port).start())
        for p in self.partners:
            signer = load_signer(dev_key_path(settings.partners_file, p.id), p.id)
            sim = PARTNER_SIMULATORS[p.adapter](p.id, signer, hub_url=self.hub_url,
                                                 hub_keys=hub_ring)
            sc.sims[p.id] = sim
            if p.mode == "push":
                self.servers.append(LoopbackServer(sim.app, port=self.ports[p.id]).start())
        for partner_id, fault in PARTNER_FAULTS.items():
            sc.sims[partner_id].faults.set(fault, 1)

    def stop_servers(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()


async def _demo(folder: Path, verbose: bool) -> int:
    started = time.monotonic()
    sc = Scenario(folder, started, Progress(started))
    # A partner simulator's injected "reset" drops the connection without answering, which
    # uvicorn reports as an error; that one line is the fault working, not a failure.
    logging.getLogger("uvicorn.error").addFilter(
        lambda record: "without starting response" not in record.getMessage())
    print("PX gateway demo: the hub (SQLite, embedded dispatcher), 5 partner and 2 rail "
          "simulators on loopback")
    sc.progress.begin("start hub and simulators")
    stack = _Stack(folder)
    rails = stack.start_rails()
    try:
        settings, token = await stack.instance(rails)
        stack.serve(sc, settings)
        await _play(sc, stack, rails, token)
        stack.stop_servers()
        await final_checks(sc, settings, rails)
        summary(sc, rails, stack.rail_faults, verbose=verbose)
    finally:
        stack.stop_servers()
        rails.stop()
    elapsed = time.monotonic() - started
    if sc.problems:
        print(f"\nFAILED after {elapsed:.1f}s:")
        for line in sc.problems:
            print(f"  - {line}")
        return 1
    print(f"\nAll invariants held ({elapsed:.1f}s).")
    return 0


async def _play(sc: Scenario, stack: _Stack, rails: RailSims, token: str) -> None:
    """Play every step with MM-SSB polling its inbox meanwhile."""
    async with httpx.AsyncClient(timeout=10) as http, httpx.AsyncClient(
            base_url=stack.hub_url, timeout=10,
            headers={"Authorization": f"Bearer {token}"}) as api:
        poller = asyncio.create_task(sc.sims["MM-SSB"].poll_forever(http, 0.3))
        try:
            listening = ", ".join(f":{port}" for port in stack.ports.values())
            sc.progress.end(True, f"hub :{stack.hub_port}, partners {listening} + MM-SSB "
                            "pulling")
            await play(Run(sc, http, api, stack.hub_url, rails, stack.rail_faults))
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
