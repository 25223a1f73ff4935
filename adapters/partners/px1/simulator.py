"""Simulator of a PX/1-native partner (ID-BPJSTK, BD-WEWB): the reference adapter's partner side.

Samples carry each partner's identifiers and script: an Indonesian NIK and passport for
ID-BPJSTK, a Bangladeshi NID with Bengali names and free text for BD-WEWB.
"""

from __future__ import annotations

from typing import Any

from adapters.partners.common.simulator import PartnerSimulator
from adapters.partners.px1 import Px1Adapter
from gateway.protocol.signing import Signer

__all__ = ["SAMPLES", "build_simulator"]


def _bpjstk_claim(claim_ref: str) -> dict[str, Any]:
    return {
        "claim_ref": claim_ref, "benefit": "EI_PERMANENT_DISABLEMENT",
        "worker": {"name": "Siti Rahayu Nur Aini", "date_of_birth": "1991-03-14",
                   "nationality": "ID", "passport_no": "C1234567",
                   "national_id": {"scheme": "ID-NIK", "value": "3201145403910002"},
                   "employer_name": "PT Sawit Makmur Sdn Bhd"},
        "incident": {"date": "2026-10-02", "kind": "accident",
                     "description": "Jatuh dari tangga di kilang sawit"},
        "claimant": {"relationship": "self", "name": "Siti Rahayu Nur Aini",
                     "phone": "+6281234567890"},
        "payout": {"method": "ewallet", "provider": "merchantrade", "account": "MT-0042",
                   "account_name": "Siti Rahayu Nur Aini"},
        "documents": [],
    }


def _wewb_claim(claim_ref: str) -> dict[str, Any]:
    return {
        "claim_ref": claim_ref, "benefit": "EI_DEPENDANTS",
        "worker": {"name": "মোহাম্মদ রহিম উদ্দিন", "date_of_birth": "1989-07-01",
                   "nationality": "BD", "passport_no": "EB0123456",
                   "national_id": {"scheme": "BD-NID", "value": "1987654321"}},
        "incident": {"date": "2026-09-18", "kind": "death",
                     "description": "নির্মাণস্থলে দুর্ঘটনায় মৃত্যু"},
        "claimant": {"relationship": "spouse", "name": "ফাতেমা বেগম",
                     "national_id": {"scheme": "BD-NID", "value": "19901234567890123"},
                     "phone": "+8801712345678"},
        "payout": {"method": "bank", "provider": "sonali-bank", "account": "0123456789012",
                   "account_name": "ফাতেমা বেগম"},
        "documents": [],
    }


SAMPLES = {"ID-BPJSTK": _bpjstk_claim, "BD-WEWB": _wewb_claim}


def build_simulator(partner_id: str, signer: Signer, **options: Any) -> PartnerSimulator:
    """A simulator for a PX/1-native partner."""
    return PartnerSimulator(partner_id, Px1Adapter(), signer,
                            sample_claim=SAMPLES.get(partner_id, _bpjstk_claim), **options)
