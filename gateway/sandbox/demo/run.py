"""Start the hub and every simulator on loopback, play the steps, check, report, stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from gateway.sandbox.demo.checks import final_checks
from gateway.sandbox.demo.report import summary
from gateway.sandbox.demo.scenario import PARTNER_FAULTS, RAIL_FAULTS, Progress, Scenario
from gateway.sandbox.demo.steps import Run, play

__all__ = ["run_demo"]


def run_demo(keep: Path | None = None) -> int:
    """Run the scenario; return the process exit code (0: every invariant held)."""
    folder = keep or Path(tempfile.mkdtemp(prefix="px-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(_demo(folder))
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)


async def _demo(folder: Path) -> int:
    import dataclasses

    from adapters.simulation import Faults, LoopbackServer
    from gateway.app import create_app
    from gateway.backoffice.auth import write_dev_tokens
    from gateway.config import Settings
    from gateway.protocol.envelope import HUB_PARTY
    from gateway.protocol.keys import load_signer, write_private_key
    from gateway.protocol.signing import KeyRing
    from gateway.runtime.bootstrap import (
        DEV_PARTNERS,
        dev_key_path,
        prepare_instance,
        write_dev_registry,
    )
    from gateway.sandbox.rails import free_port, start_rail_sims, write_rails_file
    from gateway.sandbox.simulators import PARTNER_SIMULATORS
    from gateway.storage.migrate import upgrade

    started = time.monotonic()
    sc = Scenario(folder, started, Progress(started))
    # A partner simulator's injected "reset" drops the connection without answering, which
    # uvicorn reports as an error; that one line is the fault working, not a failure.
    logging.getLogger("uvicorn.error").addFilter(
        lambda record: "without starting response" not in record.getMessage())
    print("PX gateway demo: the hub (SQLite, embedded dispatcher), 5 partner and 2 rail "
          "simulators on loopback")
    sc.progress.begin("start hub and simulators")
    hub_port = free_port()
    hub_url = f"http://127.0.0.1:{hub_port}"
    rail_faults = {"merchantrade": Faults(seed=5), "iso20022": Faults(seed=6)}
    for f in rail_faults.values():
        for fault, options in RAIL_FAULTS:
            f.add(fault, rate=0.25, count=1, **options)
    rails = start_rail_sims(list(rail_faults), hub_url=hub_url, tick_seconds=0.3,
                            faults=rail_faults)
    ports = {p.id: free_port() for p in DEV_PARTNERS if p.mode == "push"}
    partners = tuple(dataclasses.replace(p, port=ports[p.id]) if p.id in ports else p
                     for p in DEV_PARTNERS)
    write_private_key(folder / "hub.jwk.json", "MY-PERKESO-demo-1", "EdDSA")
    write_dev_registry(folder / "partners.toml", partners)
    settings = Settings(
        database_url=f"sqlite:///{folder / 'gateway.db'}", partners_file=folder / "partners.toml",
        signing_key_file=folder / "hub.jwk.json",
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
    hub_ring = KeyRing()
    hub_ring.add_keyset(HUB_PARTY, load_signer(settings.signing_key_file, HUB_PARTY).jwks())
    servers: list[Any] = []
    poller: asyncio.Task[None] | None = None
    code = 1
    try:
        servers.append(LoopbackServer(create_app(settings), port=hub_port).start())
        for p in partners:
            signer = load_signer(dev_key_path(settings.partners_file, p.id), p.id)
            sim = PARTNER_SIMULATORS[p.adapter](p.id, signer, hub_url=hub_url,
                                                 hub_keys=hub_ring)
            sc.sims[p.id] = sim
            if p.mode == "push":
                servers.append(LoopbackServer(sim.app, port=ports[p.id]).start())
        for partner_id, fault in PARTNER_FAULTS.items():
            sc.sims[partner_id].faults.set(fault, 1)
        async with httpx.AsyncClient(timeout=10) as http, httpx.AsyncClient(
                base_url=hub_url, timeout=10,
                headers={"Authorization": f"Bearer {token}"}) as api:
            poller = asyncio.create_task(sc.sims["MM-SSB"].poll_forever(http, 0.3))
            listening = ", ".join(f":{port}" for port in ports.values())
            sc.progress.end(True, f"hub :{hub_port}, partners {listening} + MM-SSB pulling")
            await play(Run(sc, http, api, hub_url, rails, rail_faults))
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
        poller = None
        for server in reversed(servers):
            server.stop()
        servers.clear()
        await final_checks(sc, settings, rails)
        summary(sc, rails, rail_faults)
    finally:
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        for server in reversed(servers):
            server.stop()
        rails.stop()
    elapsed = time.monotonic() - started
    if sc.problems:
        print(f"\nFAILED after {elapsed:.1f}s:")
        for line in sc.problems:
            print(f"  - {line}")
        return code
    print(f"\nAll invariants held ({elapsed:.1f}s).")
    return 0

