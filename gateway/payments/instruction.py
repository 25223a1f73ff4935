"""The payout instruction as first sent, stored with the submission fact.

A payout is resent exactly as first sent: the rail recognises a resend by its idempotency key
and refuses the same key with another body, so rebuilding the instruction from the payment's
current columns (an account changed meanwhile) would turn a safe resend into a refusal and a
payment the rail holds into one the hub believes refused.
"""

from __future__ import annotations

import json

from sqlalchemy.engine import RowMapping

from gateway.money import Money
from gateway.ports.rail import PayoutInstruction

__all__ = ["build", "decode", "encode", "of"]


def build(r: RowMapping) -> PayoutInstruction:
    """Return the instruction the payment's current columns describe (never attempted yet)."""
    ref = f"PERKESO {r.benefit} {r.claim_ref or r.pension_ref}"
    return PayoutInstruction(
        payment_id=r.payment_id, idempotency_key=r.idempotency_key,
        amount=Money(r.amount_minor, r.currency), beneficiary_name=r.account_name,
        provider=r.provider, account=r.account, reference=ref[:140],
    )


def encode(p: PayoutInstruction) -> str:
    """Serialise an instruction for the ``payments.instruction`` column."""
    return json.dumps({
        "payment_id": p.payment_id, "idempotency_key": p.idempotency_key,
        "amount_minor": p.amount.minor, "currency": p.amount.currency,
        "beneficiary_name": p.beneficiary_name, "provider": p.provider, "account": p.account,
        "reference": p.reference,
    }, ensure_ascii=False, sort_keys=True)


def decode(text: str) -> PayoutInstruction:
    """Read an instruction stored by ``encode``."""
    d = json.loads(text)
    return PayoutInstruction(
        payment_id=d["payment_id"], idempotency_key=d["idempotency_key"],
        amount=Money(int(d["amount_minor"]), d["currency"]),
        beneficiary_name=d["beneficiary_name"], provider=d["provider"], account=d["account"],
        reference=d["reference"],
    )


def of(r: RowMapping) -> PayoutInstruction:
    """Return what is (or will be) sent for this payment: the stored one once attempted."""
    return decode(r.instruction) if r.instruction else build(r)
