"""Pension schedules through the back office and partner messages: what the pension suites
(tests/integration/payments/test_pensions.py, evidence/test_tampered_pensions.py) share."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from gateway.composition import Hub, inbound_processors
from gateway.ports.processing import ProcessingContext
from gateway.protocol.envelope import Envelope

NIK = {"scheme": "ID-NIK", "value": "3201145403910002"}


def pension_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "pension_ref": "PEN-ID-0042", "partner_id": "ID-BPJSTK",
        "beneficiary": {"name": "Siti Aminah", "national_id": NIK},
        "benefit": "INV_PENSION", "monthly_amount": {"amount": "550.00", "currency": "MYR"},
        "start_on": "2026-08-01", "end_on": "2027-12-31", "rail": "fake",
        "payout": {"provider": "BANK-BRI", "account": "0123456789", "account_name": "Siti"},
        "life_certificate_due_on": "2026-12-31",
    }
    body.update(over)
    return body


async def run_pensions(client: Any, auth: dict[str, str], today: str, clock: Any) -> int:
    """Run the schedules for ``today``, the hub's ``clock`` moved to that day first (a run
    for a future day is refused); return how many payments it created."""
    noon = datetime.combine(date.fromisoformat(today), time(4), tzinfo=UTC)  # 12:00 MYT
    clock.now = max(clock.now, noon)
    r = await client.post("/v1/backoffice/pensions/run", json={"today": today}, headers=auth)
    assert r.status_code == 200, r.text
    return int(r.json()["created"])


async def process(hub: Hub, type_: str, payload: dict[str, Any],
                  partner: str = "ID-BPJSTK") -> None:
    """Process a partner message of ``type_`` directly (no intake, no outbox)."""
    env = Envelope.model_validate({
        "id": "0193a3c4-6f1e-7c2a-9b1d-2f4e5a6b7c8d", "type": type_, "version": 1,
        "sender": partner, "recipient": "MY-PERKESO", "sent_at": "2026-11-21T08:15:30Z",
        "payload": payload})
    async with hub.uow() as uow:
        await inbound_processors()[type_](ProcessingContext(uow.conn, hub.clock(), 0, partner,
                                                  hub.outbound), env)
        await uow.commit()


async def payments_of(client: Any, auth: dict[str, str], **query: str) -> dict[str, str]:
    r = await client.get("/v1/backoffice/payments", params={"limit": 500, **query}, headers=auth)
    return {p["payment_id"]: p["state"] for p in r.json()["payments"]}
