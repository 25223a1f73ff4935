"""Payments in GET /v1/tracking/{correlation_id}, through the real HTTP app (both databases).

A partner sees the payments of its own claim or pension thread, in the protocol's states
(``unknown`` shows as ``submitted``, ``cancelled`` as ``failed`` with reason ``cancelled``),
and never another partner's payment with the same reference.
"""

from __future__ import annotations

import pytest

from tests.support.partners import TestPartner, claim_payload
from tests.support.payments import payment_body

pytestmark = pytest.mark.anyio


async def _claim(client, partner: TestPartner, ref: str) -> None:
    body, headers = partner.signed(partner.envelope(
        "claim.notify", claim_payload(ref), correlation_id=ref))
    r = await client.post("/v1/messages", content=body, headers=headers)
    assert r.status_code == 202, r.text


async def _track(client, partner: TestPartner, ref: str):  # type: ignore[no-untyped-def]
    return await client.get(f"/v1/tracking/{ref}", headers=partner.token())


async def test_partner_tracks_its_payments_in_protocol_states(
        client, auth, rail, dispatcher, instance, bpjstk: TestPartner) -> None:
    wewb = TestPartner.from_registry(instance / "partners.toml", "BD-WEWB")
    await _claim(client, bpjstk, "CLM-T-1")
    await _claim(client, wewb, "CLM-T-1")  # the same reference in another partner's thread
    for pid, partner, account in (("PAY-T1", "ID-BPJSTK", "60111"),
                                  ("PAY-T2", "ID-BPJSTK", "60222"),
                                  ("PAY-T3", "ID-BPJSTK", "60333"),
                                  ("PAY-W1", "BD-WEWB", "60444")):
        r = await client.post("/v1/backoffice/payments", headers=auth, json=payment_body(
            pid, partner_id=partner, claim_ref="CLM-T-1",
            payout={"provider": "MTWALLET", "account": account, "account_name": "A"}))
        assert r.status_code == 201, r.text
    r = await _track(client, bpjstk, "CLM-T-1")
    assert r.status_code == 200, r.text
    assert [(p["payment_id"], p["state"]) for p in r.json()["payments"]] == [
        ("PAY-T1", "instructed"), ("PAY-T2", "instructed"), ("PAY-T3", "instructed")]

    rail.submit_faults = ["none", "unknown_after"]  # PAY-T2: acted on, answer lost
    r = await client.post("/v1/backoffice/payments/PAY-T3/cancel", headers=auth,
                          json={"reason": "duplicate instruction"})
    assert r.status_code == 200, r.text
    await dispatcher.run_once()
    rail.settle("PAY-T1")
    r = await client.post("/v1/rails/fake/callbacks", content=rail.callback("PAY-T1"),
                          headers={"x-fake-signature": "good"})
    assert r.json()["state"] == "paid"

    thread = (await _track(client, bpjstk, "CLM-T-1")).json()
    got = {p["payment_id"]: p for p in thread["payments"]}
    assert set(got) == {"PAY-T1", "PAY-T2", "PAY-T3"}  # never BD-WEWB's PAY-W1
    assert got["PAY-T1"]["state"] == "paid"
    assert got["PAY-T1"]["paid_via"]["rail"] == "fake" and got["PAY-T1"]["paid_at"]
    assert got["PAY-T1"]["amount"] == {"amount": "1250.00", "currency": "MYR"}
    assert got["PAY-T1"]["claim_ref"] == "CLM-T-1"
    assert got["PAY-T2"]["state"] == "submitted"  # internally unknown
    assert got["PAY-T3"]["state"] == "failed" and got["PAY-T3"]["reason"] == "cancelled"
    allowed = {"instructed", "submitted", "paid", "failed", "returned", "reconciled"}
    assert {p["state"] for p in thread["payments"]} <= allowed
    # The payment's paid notices are in the thread too.
    types = [m["type"] for m in thread["messages"]]
    assert "payment.notice" in types and types[0] == "claim.notify"

    other = (await _track(client, wewb, "CLM-T-1")).json()
    assert [p["payment_id"] for p in other["payments"]] == ["PAY-W1"]


async def test_pension_thread_with_payments_only(client, auth, rail, instance,
                                                 bpjstk: TestPartner) -> None:
    """A pension's payments form a thread even before any message was exchanged on it."""
    r = await client.post("/v1/backoffice/payments", headers=auth, json=payment_body(
        "PEN-T.202611", claim_ref=None, pension_ref="PEN-T", benefit="INV_PENSION"))
    assert r.status_code == 201, r.text
    thread = (await _track(client, bpjstk, "PEN-T")).json()
    assert thread["messages"] == []
    assert [(p["payment_id"], p["pension_ref"], p["state"]) for p in thread["payments"]] == [
        ("PEN-T.202611", "PEN-T", "instructed")]
    pk = TestPartner.from_registry(instance / "partners.toml", "PK-MOPHRD")
    r = await _track(client, pk, "PEN-T")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
