"""Back-office payment requests for tests: ``payment_body`` is one valid instruction."""

from __future__ import annotations

from typing import Any

__all__ = ["payment_body"]


def payment_body(payment_id: str = "PAY-0001", **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "payment_id": payment_id,
        "partner_id": "ID-BPJSTK",
        "beneficiary": {"name": "Siti Aminah", "national_id": {"scheme": "ID-NIK",
                                                                "value": "3201145403910002"}},
        "benefit": "EI_TEMPORARY_DISABLEMENT",
        "claim_ref": "CLM-2026-000123",
        "socso_claim_no": "SOCSO-000001",
        "amount": {"amount": "1250.00", "currency": "MYR"},
        "rail": "fake",
        "payout": {"provider": "MTWALLET", "account": "60123456789",
                   "account_name": "Siti Aminah"},
    }
    body.update(over)
    return body
