"""What ``gateway serve`` will call, and ``--with-simulators``: the simulators standing in for it.

At start ``serve`` names every partner endpoint it pushes to and every rail it pays through,
and, for those on loopback, the ``gateway simulate`` command that stands in for each; so a
newcomer whose deliveries retry against a closed port sees why before the first retry.
``--with-simulators`` runs exactly those commands as child processes (the simulators of
``gateway simulate``, nothing re-implemented) and stops them when ``serve`` ends.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from adapters.simulation import free_port
from gateway.composition import RAIL_KINDS, partner_adapters
from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.payments import rails_file_of
from gateway.payments.rails import load_rails
from gateway.protocol.partners import load_registry
from gateway.runtime.bootstrap import DEV_PARTNERS

__all__ = ["Companion", "Simulators", "companions", "describe"]

log = logging.getLogger(__name__)

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_DEV_PORTS = {p.id: p.port for p in DEV_PARTNERS}
_PULL_PORT_BASE = 8420
_DEFAULT_HUB = "http://127.0.0.1:8400"  # `gateway simulate`'s default --hub


@dataclass(frozen=True, slots=True)
class Companion:
    """A partner or rail the hub calls (or that polls it), and the simulator for it."""

    kind: str  # "partner" or "rail"
    name: str
    calls: str  # what the hub does with it, e.g. "pushes to http://127.0.0.1:8411/px"
    port: int | None  # the simulator's port, None if the endpoint is not on loopback
    args: tuple[str, ...]  # the `gateway` arguments that run its simulator ((): none)
    # A pull partner's simulator serves only /_sim (it polls the hub): any free port will do.
    movable: bool = False

    def command(self) -> str:
        return "gateway " + " ".join(self.args) if self.args else ""


def _loopback_port(url: str) -> int | None:
    parts = urlsplit(url)
    if parts.hostname not in _LOOPBACK or parts.scheme != "http":
        return None
    return parts.port or 80


def companions(settings: Settings, hub_url: str) -> list[Companion]:
    """Every partner endpoint and rail of this instance, with its simulator's command.

    Raises:
        ConfigError: the registry or the rails file is invalid (as the hub would say).
    """
    registry = load_registry(settings.partners_file, frozenset(partner_adapters()))
    found: list[Companion] = []
    # Only what differs from `gateway simulate`'s defaults, so the commands stay short.
    hub = ("--hub", hub_url) if hub_url != _DEFAULT_HUB else ()
    common = (*hub, *(("--registry", str(settings.partners_file))
                      if settings.partners_file != Path("partners.toml") else ()))
    for partner in registry:
        if partner.mode == "push" and partner.endpoint:
            port = _loopback_port(partner.endpoint)
            found.append(Companion(
                "partner", partner.id, f"pushes to {partner.endpoint}", port,
                ("simulate", "partner", partner.id, "--port", str(port), *common)
                if port else ()))
        else:
            port = _DEV_PORTS.get(partner.id) or _PULL_PORT_BASE + len(found)
            found.append(Companion(
                "partner", partner.id, "is polled (GET /v1/inbox, receipt.ack)", port,
                ("simulate", "partner", partner.id, "--port", str(port), *common),
                movable=True))
    rails = load_rails(rails_file_of(settings), RAIL_KINDS)
    for name, section in rails.raw.items():
        url = str(section.get("base_url", ""))
        port = _loopback_port(url)
        found.append(Companion("rail", name, f"pays through {url}", port,
                               ("simulate", "rail", name, "--port", str(port), *hub)
                               if port else ()))
    return found


def describe(found: list[Companion], *, starting: bool = False) -> list[str]:
    """Lines for the start log: what is called, and how to start its simulator."""
    lines = []
    for c in found:
        how = f"simulator: {c.command()}" if c.args else "not on loopback: no simulator"
        lines.append(f"{c.kind} {c.name} {c.calls} ({how})")
    if any(c.args for c in found) and not starting:
        lines.append("start them all with `gateway serve --with-simulators`, or each in its "
                     "own terminal with the command above")
    return lines


class Simulators:
    """The simulators of ``companions`` as child processes (``gateway simulate ...``)."""

    def __init__(self, found: list[Companion]) -> None:
        self.found = [c for c in found if c.args and c.port]
        self.procs: list[tuple[Companion, subprocess.Popen[bytes]]] = []

    def start(self, timeout: float = 60.0) -> None:
        """Start each simulator and wait (bounded) until it listens.

        Raises:
            ConfigError: a simulator's port is taken or it exited at start.
        """
        try:
            self._start(timeout)
        except BaseException:  # Ctrl-C while they start included: leave no orphan behind
            self.stop()
            raise

    def _start(self, timeout: float) -> None:
        for i, c in enumerate(self.found):
            port = c.port
            assert port is not None
            if c.movable and _listening(port):
                port = free_port()
                at = c.args.index("--port") + 1
                c = self.found[i] = dataclasses.replace(
                    c, port=port, args=(*c.args[:at], str(port), *c.args[at + 1:]))
            if _listening(port):
                raise ConfigError(f"cannot start the {c.kind} simulator of {c.name}: port "
                                  f"{c.port} is already in use (is one running already?)")
            self.procs.append((c, subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", *c.args], stdin=subprocess.DEVNULL)))
        deadline = time.monotonic() + timeout
        for c, proc in self.procs:
            assert c.port is not None
            while not _listening(c.port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise ConfigError(f"the {c.kind} simulator of {c.name} did not start "
                                      f"(`{c.command()}`; its output is above)")
                time.sleep(0.05)
            log.info("started the %s simulator of %s on http://127.0.0.1:%d (pid %d)",
                     c.kind, c.name, c.port, proc.pid)

    def stop(self) -> None:
        """Stop every simulator this started (SIGTERM, then SIGKILL after 5 s)."""
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for _, proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self.procs:
            log.info("stopped %d simulator(s)", len(self.procs))
        self.procs.clear()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0
