"""The one place where the hub learns which adapters exist: name -> implementation.

Adding a partner with its own wire format is a new package under ``adapters/partners/`` plus
one line here; adding a rail is a package under ``adapters/rails/`` plus one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from adapters.partners.px1 import Px1Adapter
from gateway.ports.partner import PartnerAdapter

__all__ = ["PARTNER_ADAPTERS", "partner_adapters"]

PARTNER_ADAPTERS: dict[str, Callable[[], PartnerAdapter]] = {
    "px1": Px1Adapter,
}


def partner_adapters() -> dict[str, PartnerAdapter]:
    """Instantiate every partner adapter once (they are stateless translators)."""
    return {name: factory() for name, factory in PARTNER_ADAPTERS.items()}
