"""PK-MOPHRD's simulator: its camelCase envelope, DD/MM/YYYY dates, dashed CNICs."""

from __future__ import annotations

from typing import Any

from adapters.partners.common.simulator import PartnerSimulator
from adapters.partners.pk_mophrd import PkMophrdAdapter
from gateway.protocol.signing import Signer

__all__ = ["build_simulator", "sample_claim"]


def sample_claim(claim_ref: str) -> dict[str, Any]:
    return {
        "claim_ref": claim_ref, "benefit": "INV_PENSION",
        "worker": {"name": "Ali Raza", "date_of_birth": "1988-01-02", "nationality": "PK",
                   "passport_no": "AB1234567",
                   "national_id": {"scheme": "PK-CNIC", "value": "3520212345671"}},
        "incident": {"date": "2026-08-30", "kind": "invalidity",
                     "description": "Chronic back injury; certified unable to work"},
        "claimant": {"relationship": "self", "name": "Ali Raza", "phone": "+923001234567"},
        "payout": {"method": "bank", "provider": "hbl", "account": "PK36SCBL0000001123456702",
                   "account_name": "Ali Raza"},
        "documents": [],
    }


def build_simulator(partner_id: str, signer: Signer, **options: Any) -> PartnerSimulator:
    """PK-MOPHRD's simulator (push: serve ``app``)."""
    return PartnerSimulator(partner_id, PkMophrdAdapter(), signer, sample_claim=sample_claim,
                            **options)
