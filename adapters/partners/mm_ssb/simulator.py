"""MM-SSB's simulator: sends signed JSON Lines batches, pulls its inbox, acknowledges.

Its sample claim writes the NRC in Burmese script, as MM-SSB's offices do.
"""

from __future__ import annotations

from typing import Any

from adapters.partners.common.simulator import PartnerSimulator
from adapters.partners.mm_ssb import MmSsbAdapter
from gateway.protocol.signing import Signer

__all__ = ["build_simulator", "sample_claim"]


def sample_claim(claim_ref: str) -> dict[str, Any]:
    return {
        "claim_ref": claim_ref, "benefit": "EI_TEMPORARY_DISABLEMENT",
        "worker": {"name": "မောင်ကျော်ဇင်", "date_of_birth": "1994-12-05", "nationality": "MM",
                   "national_id": {"scheme": "MM-NRC", "value": "12/OUKAMA(N)123456"}},
        "incident": {"date": "2026-10-20", "kind": "commuting_accident",
                     "description": "အလုပ်သွားရာလမ်းတွင် ဆိုင်ကယ်မတော်တဆမှု"},
        "claimant": {"relationship": "self", "name": "မောင်ကျော်ဇင်",
                     "phone": "+959791234567"},
        "payout": {"method": "ewallet", "provider": "merchantrade", "account": "MT-7788",
                   "account_name": "Kyaw Zin"},
        "documents": [],
    }


def build_simulator(partner_id: str, signer: Signer, **options: Any) -> PartnerSimulator:
    """MM-SSB's simulator (pull: call ``poll``)."""
    return PartnerSimulator(partner_id, MmSsbAdapter(), signer, sample_claim=sample_claim,
                            **options)
