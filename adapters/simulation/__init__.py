"""Simulator support shared by the partner and rail simulators, the sandbox and the tests.

- ``faults``: ``Faults``, the one fault plan (rail request/callback/statement faults and the
  partner simulators' counted faults and switches), seeded and thread-safe.
- ``loopback``: ``LoopbackServer``, the one loopback uvicorn server (threaded or in the caller's
  event loop), ``LoopbackServed`` for simulator objects, ``free_port``/``bind``, and
  ``abort_connection`` (a real TCP reset for the ``reset`` faults).

It imports nothing from ``gateway``: simulators stay independent of the hub they exercise.
"""

from adapters.simulation.faults import (
    PARTNER_FAULTS,
    RAIL_FAULTS,
    REQUEST_FAULTS,
    Fault,
    FaultRule,
    FaultRuleIn,
    Faults,
)
from adapters.simulation.loopback import (
    LoopbackServed,
    LoopbackServer,
    abort_connection,
    bind,
    free_port,
    run_blocking,
)

__all__ = [
    "PARTNER_FAULTS",
    "RAIL_FAULTS",
    "REQUEST_FAULTS",
    "Fault",
    "FaultRule",
    "FaultRuleIn",
    "Faults",
    "LoopbackServed",
    "LoopbackServer",
    "abort_connection",
    "bind",
    "free_port",
    "run_blocking",
]
