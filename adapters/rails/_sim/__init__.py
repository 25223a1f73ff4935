"""The rail simulators' machinery: the fault middleware, ``SimApp``, callback delivery.

Both rail simulators are FastAPI apps built on ``SimApp``; they differ only in their wire format
and ledger rules. Faults are configured through a ``Faults`` object (``adapters.simulation``, in
process) or ``POST /_sim/faults`` (JSON, same fields as ``FaultRule``); the simulators are served
by ``adapters.simulation.LoopbackServer``.
"""

from dataclasses import dataclass

from adapters.rails._sim.callbacks import CallbackSender
from adapters.rails._sim.server import FaultMiddleware, SimApp, add_fault_routes
from gateway.ports.rail import PayoutState

__all__ = ["CallbackSender", "FaultMiddleware", "LedgerEntry", "SimApp", "add_fault_routes"]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """What a simulated rail holds for one key (tests compare it with the gateway's record)."""

    state: PayoutState
    amount: str | None  # decimal string as instructed; None for a key cancelled unseen
    currency: str | None
    account: str | None
    paid_count: int
