"""Money and envelope models: exact amounts, strict fields."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.money import Money
from gateway.protocol.envelope import Envelope, PaymentNotice, WireMoney


@given(st.integers(min_value=0, max_value=10**15), st.sampled_from(["MYR", "NPR", "BDT"]))
def test_money_wire_round_trip(minor: int, currency: str) -> None:
    m = Money(minor, currency)
    assert Money.parse(m.amount_str(), currency) == m


@pytest.mark.parametrize("amount", ["1250", "1250.0", "1250.000", "-1.00", "1e3", "01.00", ""])
def test_money_refuses_inexact_amounts(amount: str) -> None:
    with pytest.raises(ValueError):
        Money.parse(amount, "MYR")


def test_money_model_refuses_floats_and_unknown_currency() -> None:
    with pytest.raises(ValidationError):
        WireMoney.model_validate({"amount": 12.5, "currency": "MYR"})
    with pytest.raises(ValidationError):
        WireMoney.model_validate({"amount": "12.50", "currency": "USD"})
    assert WireMoney.model_validate({"amount": "12.50", "currency": "MYR"}).value().minor == 1250


def test_conversion_rounds_half_even_and_is_exact() -> None:
    assert Money.parse("100.00", "MYR").convert(Decimal("3570.125"), "IDR") == \
        Money(35701250, "IDR")
    assert Money.parse("0.01", "MYR").convert(Decimal("0.5"), "BDT").minor == 0


def test_envelope_needs_an_offset_and_a_uuid() -> None:
    base = {"id": "0193a3c4-6f1e-7c2a-9b1d-2f4e5a6b7c8d", "type": "claim.notify", "version": 1,
            "sender": "ID-BPJSTK", "recipient": "MY-PERKESO",
            "sent_at": "2026-11-21T08:15:30Z", "payload": {}}
    assert Envelope.model_validate(base).correlation_id is None
    for bad in ({"sent_at": "2026-11-21T08:15:30"}, {"sent_at": 1763712930},
                {"id": "not-a-uuid"}, {"extra": 1}, {"version": 2}):
        with pytest.raises(ValidationError):
            Envelope.model_validate({**base, **bad})


def test_payment_notice_needs_exactly_one_reference() -> None:
    notice = {"payment_id": "PAY-1", "benefit": "INV_PENSION",
              "amount": {"amount": "550.00", "currency": "MYR"},
              "paid_via": {"rail": "merchantrade", "reference": "MT-1"},
              "paid_at": "2026-11-21T08:15:30Z"}
    with pytest.raises(ValidationError, match="exactly one of claim_ref and pension_ref"):
        PaymentNotice.model_validate(notice)
    PaymentNotice.model_validate({**notice, "pension_ref": "PEN-1"})
