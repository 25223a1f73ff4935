"""The rail simulators' machinery: the fault middleware, ``SimApp``, callback delivery.

Both rail simulators are FastAPI apps built on ``SimApp``; they differ only in their wire format
and ledger rules. Faults are configured through a ``Faults`` object (``adapters.simulation``, in
process) or ``POST /_sim/faults`` (JSON, same fields as ``FaultRule``); the simulators are served
by ``adapters.simulation.LoopbackServer``.
"""

from adapters.rails._sim.callbacks import CallbackSender
from adapters.rails._sim.server import FaultMiddleware, SimApp, add_fault_routes

__all__ = ["CallbackSender", "FaultMiddleware", "SimApp", "add_fault_routes"]
