"""Loopback rail simulators and a rails file pointing at them: for tests, the demo, benchmarks.

The simulators' default secrets (``adapters.rails.*.simulator``) are written into the rails
file, so the hub's adapters and the simulators agree without any real secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.simulation import Faults, free_port
from gateway.composition import RAIL_KINDS
from gateway.errors import ConfigError
from gateway.payments.rails import load_rails
from gateway.sandbox.simulators import RAIL_SIMULATORS

__all__ = ["SIM_CALLBACK_SECRET", "SIM_KEY_ID", "SIM_REQUEST_SECRET", "RailSims", "free_port",
           "start_rail_sims", "write_rails_file"]

SIM_KEY_ID = "px-test"
SIM_REQUEST_SECRET = "sim-request-secret"
SIM_CALLBACK_SECRET = "sim-callback-secret"


@dataclass
class RailSims:
    sims: dict[str, Any] = field(default_factory=dict)  # name -> running simulator

    def urls(self) -> dict[str, str]:
        return {name: sim.url for name, sim in self.sims.items()}

    def ledger(self) -> dict[str, int]:
        """Idempotency key -> how many times a simulator paid it (all rails)."""
        merged: dict[str, int] = {}
        for sim in self.sims.values():
            merged.update(sim.ledger())
        return merged

    def entry(self, key: str) -> Any:
        """What any simulator holds for ``key`` (a ``LedgerEntry``), or None."""
        for sim in self.sims.values():
            found = sim.entry(key)
            if found is not None:
                return found
        return None

    def stop(self) -> None:
        for sim in self.sims.values():
            sim.stop()


def start_rail_sims(names: list[str], *, hub_url: str | None, tick_seconds: float | None = 0.2,
                    faults: dict[str, Any] | None = None,
                    ports: dict[str, int] | None = None) -> RailSims:
    """Start each named rail's simulator on loopback; callbacks go to the hub's endpoint."""
    running = RailSims()
    for name in names:
        kind = RAIL_SIMULATORS[name]
        config = kind.config(
            api_keys={SIM_KEY_ID: SIM_REQUEST_SECRET}, callback_secret=SIM_CALLBACK_SECRET,
            callback_url=f"{hub_url}/v1/rails/{name}/callbacks" if hub_url else None,
            tick_seconds=tick_seconds)
        sim = kind.simulator(config, (faults or {}).get(name) or Faults(seed=1))
        running.sims[name] = sim.start((ports or {}).get(name, 0))
    return running


def write_rails_file(path: Path, urls: dict[str, str], *, read_timeout: float = 2.0,
                     poll_after: float = 1.0, poll_max: float = 5.0, batch_size: int = 100,
                     max_concurrency: int | None = None,
                     return_poll: float | None = None) -> Path:
    """Write a rails file for simulators at ``urls`` (name -> base URL)."""
    lines = ["[payouts]", f"poll_after_seconds = {poll_after}",
             f"poll_max_seconds = {poll_max}", f"batch_size = {batch_size}"]
    if return_poll is not None:
        lines.append(f"return_poll_seconds = {return_poll}")
    lines.append("")
    for name, url in urls.items():
        lines += [f"[rails.{name}]", f'adapter = "{name}"', f'base_url = "{url}"',
                  f'api_key_id = "{SIM_KEY_ID}"', f'hmac_secret = "{SIM_REQUEST_SECRET}"',
                  f'callback_secret = "{SIM_CALLBACK_SECRET}"']
        if max_concurrency and name == "merchantrade":
            lines.append(f"max_concurrency = {max_concurrency}")
        lines += [f"[rails.{name}.timeouts]", "connect = 1.0", f"read = {read_timeout}",
                  "write = 2.0", "pool = 5.0", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def serve_rail_simulator(name: str, *, port: int, rails_file: Path | None, hub_url: str,
                         tick_seconds: float = 1.0) -> None:
    """Run one rail's simulator in the foreground with the secrets of the hub's rails file.

    Raises:
        ConfigError: unknown rail, or the rails file lacks it.
    """
    cfg = load_rails(rails_file, RAIL_KINDS) if rails_file else None
    section = cfg.raw.get(name) if cfg else None
    kind = (section or {}).get("adapter", name) if section else name
    if kind not in RAIL_SIMULATORS:
        raise ConfigError(f"no simulator for rail {name!r} (one of "
                          f"{', '.join(sorted(RAIL_SIMULATORS))})")
    sim = RAIL_SIMULATORS[kind]
    secrets = ({section["api_key_id"]: section["hmac_secret"]}, section["callback_secret"]) \
        if section else ({SIM_KEY_ID: SIM_REQUEST_SECRET}, SIM_CALLBACK_SECRET)
    config = sim.config(api_keys=secrets[0], callback_secret=secrets[1],
                        callback_url=f"{hub_url.rstrip('/')}/v1/rails/{name}/callbacks",
                        tick_seconds=tick_seconds)
    sim.serve("127.0.0.1", port, config)
