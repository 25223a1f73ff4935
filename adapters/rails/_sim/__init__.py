"""Shared simulator machinery: fault injection, the loopback server, callback delivery.

Both rail simulators are FastAPI apps built on ``SimApp``; they differ only in their wire format
and ledger rules. Faults are configured through a ``Faults`` object (in process) or
``POST /_sim/faults`` (JSON, same fields as ``FaultRule``).
"""

from adapters.rails._sim.callbacks import CallbackSender
from adapters.rails._sim.faults import Fault, FaultRule, Faults
from adapters.rails._sim.server import (
    LoopbackServed,
    SimApp,
    ThreadedServer,
    add_fault_routes,
)

__all__ = [
    "CallbackSender",
    "Fault",
    "FaultRule",
    "LoopbackServed",
    "Faults",
    "SimApp",
    "ThreadedServer",
    "add_fault_routes",
]
