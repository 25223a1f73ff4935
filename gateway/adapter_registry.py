"""The one place where the hub learns which adapters exist: name -> implementation.

It is also the only module of ``gateway`` that imports ``adapters``: the simulator tooling that
``gateway simulate`` and ``gateway demo`` drive (fault plans, loopback servers) is re-exported
from here.

Adding a partner with its own wire format is a new package under ``adapters/partners/`` plus
one line here; adding a rail is a package under ``adapters/rails/`` plus one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from adapters.partners.common.simulator import PartnerSimulator
from adapters.partners.mm_ssb import MmSsbAdapter
from adapters.partners.np_feb import NpFebAdapter
from adapters.partners.pk_mophrd import PkMophrdAdapter
from adapters.partners.px1 import Px1Adapter
from adapters.rails._pool import rail_client
from adapters.rails.iso20022 import Iso20022Config, Iso20022Rail
from adapters.rails.merchantrade import MerchantradeConfig, MerchantradeRail
from adapters.simulation import Faults
from adapters.simulation import LoopbackServer as ThreadedServer
from adapters.simulation import free_port as free_port
from gateway.ports.partner import PartnerAdapter
from gateway.ports.rail import RailAdapter

__all__ = [
    "PARTNER_ADAPTERS", "PARTNER_SIMULATORS", "RAIL_ADAPTERS", "RAIL_SIMULATORS",
    "Faults", "PartnerSimulator", "ThreadedServer", "partner_adapters", "rail_client",
]

PARTNER_ADAPTERS: dict[str, Callable[[], PartnerAdapter]] = {
    "px1": Px1Adapter,
    "mm_ssb": MmSsbAdapter,
    "np_feb": NpFebAdapter,
    "pk_mophrd": PkMophrdAdapter,
}

# adapter name -> module with ``build_simulator`` (imported only by `gateway simulate`/tests).
PARTNER_SIMULATORS: dict[str, str] = {
    "px1": "adapters.partners.px1.simulator",
    "mm_ssb": "adapters.partners.mm_ssb.simulator",
    "np_feb": "adapters.partners.np_feb.simulator",
    "pk_mophrd": "adapters.partners.pk_mophrd.simulator",
}


# rail adapter name -> (its typed config, the adapter built from it); configured per deployment
# in GATEWAY_RAILS_FILE (gateway.payments.rails).
RAIL_ADAPTERS: dict[str, tuple[type[BaseModel], Callable[[Any], RailAdapter]]] = {
    "merchantrade": (MerchantradeConfig, MerchantradeRail),
    "iso20022": (Iso20022Config, Iso20022Rail),
}

# rail adapter name -> module with its simulator (imported only by `gateway simulate`/tests).
RAIL_SIMULATORS: dict[str, str] = {
    "merchantrade": "adapters.rails.merchantrade.simulator",
    "iso20022": "adapters.rails.iso20022.simulator",
}


def partner_adapters() -> dict[str, PartnerAdapter]:
    """Instantiate every partner adapter once (they are stateless translators)."""
    return {name: factory() for name, factory in PARTNER_ADAPTERS.items()}
