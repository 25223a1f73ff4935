"""Canonical sample payloads of every message type, in each partner's identities and scripts."""

from __future__ import annotations

import hashlib
from typing import Any

from adapters.partners.mm_ssb.simulator import sample_claim as mm_claim
from adapters.partners.np_feb.simulator import sample_claim as np_claim
from adapters.partners.pk_mophrd.simulator import sample_claim as pk_claim
from adapters.partners.px1.simulator import SAMPLES as PX1_SAMPLES

__all__ = ["CLAIMS", "PERSONS", "sample_payload"]

CLAIMS = {"ID-BPJSTK": PX1_SAMPLES["ID-BPJSTK"], "BD-WEWB": PX1_SAMPLES["BD-WEWB"],
          "MM-SSB": mm_claim, "NP-FEB": np_claim, "PK-MOPHRD": pk_claim}

PERSONS: dict[str, dict[str, Any]] = {
    "ID-BPJSTK": {"name": "Siti Rahayu Nur Aini",
                  "national_id": {"scheme": "ID-NIK", "value": "3201145403910002"}},
    "BD-WEWB": {"name": "মোহাম্মদ রহিম উদ্দিন",
                "national_id": {"scheme": "BD-NID", "value": "1987654321"}},
    "MM-SSB": {"name": "ဒေါ်ခင်မြင့်",
               "national_id": {"scheme": "MM-NRC", "value": "12/BAHANA(N)654321"}},
    "NP-FEB": {"name": "सीता कुमारी श्रेष्ठ",
               "national_id": {"scheme": "NP-CTZ", "value": "KASKI:41-02-75-00123"}},
    "PK-MOPHRD": {"name": "Ayesha Bibi",
                  "national_id": {"scheme": "PK-CNIC", "value": "3520298765432"}},
}

_DOC = b"%PDF-1.4 sample"


def _document(kind: str = "medical_report") -> dict[str, Any]:
    return {"kind": kind, "sha256": hashlib.sha256(_DOC).hexdigest(), "filename": "report.pdf",
            "media_type": "application/pdf"}


def sample_payload(partner_id: str, type_: str) -> dict[str, Any]:
    """A valid canonical payload of ``type_`` for ``partner_id``."""
    person = PERSONS[partner_id]
    ref = f"{partner_id[:2]}-CLM-0001"
    payloads: dict[str, dict[str, Any]] = {
        "claim.notify": CLAIMS[partner_id](ref),
        "document.deliver": {"claim_ref": ref, "request_id": "REQ-1",
                             "documents": [_document()]},
        "life_certificate.submit": {"pension_ref": "PEN-0001", "beneficiary": person,
                                    "certified_on": "2026-11-02",
                                    "certified_by": "Ward office / " + person["name"],
                                    "documents": [_document("proof_of_life")]},
        "beneficiary.update": {"pension_ref": "PEN-0001", "contact": {
            "phone": CLAIMS[partner_id](ref)["claimant"]["phone"],
            "address": person["name"] + ", 12 Main Road"}},
        "payment.confirm": {"payment_id": "PAY-0001", "outcome": "received",
                            "confirmed_on": "2026-11-20"},
        "death.notify": {"claim_ref": ref, "person": person, "died_on": "2026-11-01",
                         "documents": [_document("death_certificate")]},
        "message.cancel": {"message_id": "0193a3c4-6f1e-7c2a-9b1d-2f4e5a6b7c8d",
                           "reason": "sent in error: " + person["name"]},
        "receipt.ack": {"receipt": {
            "receipt_id": "0193a3c4-6f1e-7c2a-9b1d-2f4e5a6b7c8e",
            "message_id": "0193a3c4-6f1e-7c2a-9b1d-2f4e5a6b7c8f", "sender": "MY-PERKESO",
            "status": "accepted", "received_at": "2026-11-21T08:15:31.204Z",
            "body_sha256": hashlib.sha256(b"x").hexdigest()}},
        "claim.status": {"claim_ref": ref, "socso_claim_no": "SOCSO-2026-00000042",
                         "status": "needs_documents", "reason": "Medical report missing"},
        "document.request": {"claim_ref": ref, "request_id": "REQ-1", "due_on": "2027-01-15",
                             "documents": [{"kind": "medical_report",
                                            "note": "Latest report, any language"}]},
        "medical_board.invite": {"claim_ref": ref, "session_at": "2026-12-03T02:30:00Z",
                                 "join_url": "https://meet.perkeso.example/mb/42",
                                 "language": "ne"},
        "payment.notice": {"payment_id": "PAY-0001", "claim_ref": ref,
                           "benefit": "EI_PERMANENT_DISABLEMENT",
                           "amount": {"amount": "1250.00", "currency": "MYR"},
                           "paid_via": {"rail": "merchantrade", "reference": "MT-77881"},
                           "paid_at": "2026-11-21T03:00:00.250Z"},
        "life_certificate.request": {"pension_ref": "PEN-0001", "due_on": "2027-03-31"},
    }
    return payloads[type_]
