"""Which simulator stands in for which adapter: explicit tables, for the sandbox only.

Simulators are tooling: ``gateway demo``, ``gateway simulate`` and the tests drive them, and
nothing else in ``gateway/`` imports this package (an import-direction test checks it). Adding
a partner or rail with its own simulator is one line in the table below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from adapters.partners.common.simulator import PartnerSimulator
from adapters.partners.mm_ssb import simulator as mm_ssb_sim
from adapters.partners.np_feb import simulator as np_feb_sim
from adapters.partners.pk_mophrd import simulator as pk_mophrd_sim
from adapters.partners.px1 import simulator as px1_sim
from adapters.rails.iso20022 import simulator as iso20022_sim
from adapters.rails.merchantrade import simulator as merchantrade_sim

__all__ = ["PARTNER_SIMULATORS", "RAIL_SIMULATORS", "PartnerSimulatorBuilder", "RailSimulatorKind"]

PartnerSimulatorBuilder = Callable[..., PartnerSimulator]
"""(partner_id, signer, **options) -> a simulator of that partner (not started)."""

# partner adapter name -> its simulator's builder
PARTNER_SIMULATORS: dict[str, PartnerSimulatorBuilder] = {
    "px1": px1_sim.build_simulator,
    "mm_ssb": mm_ssb_sim.build_simulator,
    "np_feb": np_feb_sim.build_simulator,
    "pk_mophrd": pk_mophrd_sim.build_simulator,
}


@dataclass(frozen=True, slots=True)
class RailSimulatorKind:
    """A rail simulator: its typed config, the class run in-process, and the foreground server."""

    config: type[BaseModel]
    simulator: Callable[..., Any]  # (config, faults) -> a LoopbackServed simulator
    serve: Callable[[str, int, Any], None]  # (host, port, config): run until interrupted


# rail adapter name -> its simulator
RAIL_SIMULATORS: dict[str, RailSimulatorKind] = {
    "merchantrade": RailSimulatorKind(merchantrade_sim.MerchantradeSimConfig,
                                      merchantrade_sim.MerchantradeSimulator,
                                      merchantrade_sim.serve),
    "iso20022": RailSimulatorKind(iso20022_sim.Iso20022SimConfig,
                                  iso20022_sim.Iso20022Simulator, iso20022_sim.serve),
}
