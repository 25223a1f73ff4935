"""NP-FEB's simulator: XML documents with Bikram Sambat dates and Devanagari names."""

from __future__ import annotations

from typing import Any

from adapters.partners.common.simulator import PartnerSimulator
from adapters.partners.np_feb import NpFebAdapter
from gateway.protocol.signing import Signer

__all__ = ["build_simulator", "sample_claim"]


def sample_claim(claim_ref: str) -> dict[str, Any]:
    return {
        "claim_ref": claim_ref, "benefit": "EI_PERMANENT_DISABLEMENT",
        "worker": {"name": "राम बहादुर थापा", "date_of_birth": "1990-04-14",
                   "nationality": "NP", "passport_no": "PA1234567",
                   "national_id": {"scheme": "NP-CTZ", "value": "KATHMANDU:27-01-71-12345"}},
        "incident": {"date": "2026-10-02", "kind": "accident",
                     "description": "कारखानामा मेसिनले हात काटियो"},
        "claimant": {"relationship": "self", "name": "राम बहादुर थापा",
                     "phone": "+9779812345678"},
        "payout": {"method": "bank", "provider": "nabil-bank", "account": "01234567890123",
                   "account_name": "Ram Bahadur Thapa"},
        "documents": [],
    }


def build_simulator(partner_id: str, signer: Signer, **options: Any) -> PartnerSimulator:
    """NP-FEB's simulator (push: serve ``app``)."""
    return PartnerSimulator(partner_id, NpFebAdapter(), signer, sample_claim=sample_claim,
                            **options)
