"""Back-office payment requests for tests: ``payment_body`` is one valid instruction;
``update_payout`` a partner's signed change of its payout account."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.composition import Hub
from tests.support.partners import TestPartner

__all__ = ["payment_body", "update_payout"]


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


async def update_payout(client: httpx.AsyncClient, hub: Hub,
                        bpjstk: TestPartner) -> dict[str, Any]:
    """ID-BPJSTK's signed beneficiary.update of CLM-2026-000123's payout to a BOOST wallet,
    received and processed; return its envelope."""
    env = bpjstk.envelope("beneficiary.update", {
        "claim_ref": "CLM-2026-000123",
        "payout": {"method": "ewallet", "provider": "BOOST", "account": "60199991234",
                   "account_name": "Siti A."}})
    body, headers = bpjstk.signed(env)
    assert (await client.post("/v1/messages", content=body, headers=headers)).status_code == 202
    assert await hub.dispatcher(batch=50, kinds=["process_inbound"]).run_once() == 1
    return env
