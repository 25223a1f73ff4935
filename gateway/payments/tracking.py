"""Payments in a partner's tracking thread (``GET /v1/tracking/{correlation_id}``).

A payment belongs to the thread whose correlation id is its ``claim_ref`` or ``pension_ref``,
and only the partner the payment is for (``payments.partner_id``) sees it. Its state is given
in the protocol's vocabulary (``docs/protocol.md``: ``instructed``, ``submitted``, ``paid``,
``failed``, ``returned``, ``reconciled``); the internal states outside it are mapped:

- ``unknown`` (sent to the rail, answer lost; being resolved by asking the rail) is
  ``submitted``: from the partner's side the payment has gone to the rail, and it is never sent
  twice;
- ``cancelled`` (stopped before it was sent, e.g. after a death notification) is ``failed``
  with ``"reason": "cancelled"``: it will never be paid.

``reconciled`` is produced once a reconciliation run has found the payout on the rail's
statement (gateway.reconciliation).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.clock import iso_millis
from gateway.money import Money
from gateway.payments.domain import PaymentState
from gateway.storage.tables import payments

__all__ = ["TRACKING_STATES", "thread_payments"]

TRACKING_STATES: dict[str, str] = {
    PaymentState.instructed.value: "instructed",
    PaymentState.sending.value: "submitted",  # may be at the rail already
    PaymentState.submitted.value: "submitted",
    PaymentState.cancel_requested.value: "submitted",  # the rail has not answered the cancel
    PaymentState.unknown.value: "submitted",
    PaymentState.paid.value: "paid",
    PaymentState.reconciled.value: "reconciled",
    PaymentState.failed.value: "failed",
    PaymentState.returned.value: "returned",
    PaymentState.cancelled.value: "failed",
}


async def thread_payments(conn: AsyncConnection, partner_id: str,
                          correlation_id: str) -> list[dict[str, Any]]:
    """The partner's payments for the claim or pension ``correlation_id``, oldest first."""
    rows = (await conn.execute(
        select(payments).where(
            payments.c.partner_id == partner_id,
            or_(payments.c.claim_ref == correlation_id,
                payments.c.pension_ref == correlation_id))
        .order_by(payments.c.created_at, payments.c.pk))).mappings()
    out = []
    for r in rows:
        item: dict[str, Any] = {
            "payment_id": r.payment_id,
            **({"claim_ref": r.claim_ref} if r.claim_ref else {"pension_ref": r.pension_ref}),
            **({"period": r.period} if r.period else {}),
            "benefit": r.benefit,
            "amount": Money(r.amount_minor, r.currency).wire(),
            "state": TRACKING_STATES.get(r.state, "submitted"),
            "at": iso_millis(r.created_at),
            "state_at": iso_millis(r.updated_at),
        }
        if r.state == PaymentState.cancelled.value:
            item["reason"] = "cancelled"
        if r.state in (PaymentState.paid.value, PaymentState.reconciled.value,
                       PaymentState.returned.value) and r.paid_at:
            item["paid_at"] = iso_millis(r.paid_at)
            item["paid_via"] = {"rail": r.rail, "reference": r.rail_reference or r.payment_id}
        out.append(item)
    return out
