"""The payment state machine and FX rounding: plain Python, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gateway.money import Money
from gateway.payments.domain import (
    FINAL,
    TRANSITIONS,
    Cause,
    IllegalTransition,
    PaymentState,
    after_rail_state,
    contradiction,
    transition,
)
from gateway.payments.fx import convert
from gateway.ports.rail import PayoutState

P = PaymentState


@pytest.mark.parametrize("current", list(P))
@pytest.mark.parametrize("target", list(P))
def test_every_transition_is_allowed_or_refused(current: P, target: P) -> None:
    if current == target:
        assert transition(current, target, Cause.callback) is None
    elif target in TRANSITIONS[current]:
        tr = transition(current, target, Cause.callback, "why")
        assert tr is not None and (tr.from_state, tr.to_state, tr.detail) == (current, target,
                                                                              "why")
    else:
        with pytest.raises(IllegalTransition):
            transition(current, target, Cause.callback)


def test_final_states() -> None:
    assert {P.failed, P.returned, P.cancelled} == FINAL
    assert TRANSITIONS[P.paid] == {P.reconciled, P.returned}
    # Only reconciliation leaves paid for reconciled; a later return still moves it.
    assert TRANSITIONS[P.reconciled] == {P.returned}
    assert contradiction(transition(P.reconciled, P.returned, Cause.callback)).kind == (  # type: ignore[arg-type, union-attr]
        "returned_after_paid")


@pytest.mark.parametrize(("current", "rail", "expected"), [
    (P.sending, PayoutState.accepted, P.submitted),
    (P.sending, PayoutState.paid, P.paid),
    (P.sending, PayoutState.failed, P.failed),
    (P.sending, PayoutState.returned, P.returned),  # resent after a crash, already returned
    (P.sending, PayoutState.cancelled, P.cancelled),  # the key was cancelled before it arrived
    (P.instructed, PayoutState.paid, None),  # never attempted: no rail can know it
    (P.cancel_requested, PayoutState.cancelled, P.cancelled),
    (P.cancel_requested, PayoutState.processing, None),
    (P.cancel_requested, PayoutState.paid, P.paid),
    (P.unknown, PayoutState.processing, P.submitted),
    (P.unknown, PayoutState.paid, P.paid),
    (P.unknown, PayoutState.returned, P.returned),
    (P.submitted, PayoutState.paid, P.paid),
    (P.submitted, PayoutState.failed, P.failed),
    (P.submitted, PayoutState.returned, P.returned),
    (P.paid, PayoutState.returned, P.returned),
    # stale or repeated reports change nothing
    (P.submitted, PayoutState.accepted, None),
    (P.paid, PayoutState.processing, None),
    (P.paid, PayoutState.paid, None),
    (P.paid, PayoutState.failed, None),
    (P.cancelled, PayoutState.processing, None),
    # a contradicting report is the rail's truth: it moves the payment (and opens a
    # discrepancy, see test_contradictions)
    (P.failed, PayoutState.paid, P.paid),
    (P.cancelled, PayoutState.paid, P.paid),
])
def test_rail_reports(current: P, rail: PayoutState, expected: P | None) -> None:
    tr = after_rail_state(current, rail, Cause.status_poll)
    assert (tr.to_state if tr else None) == expected


@pytest.mark.parametrize(("current", "target", "kind", "overpayment"), [
    (P.cancel_requested, P.paid, "paid_after_cancel_request", True),
    (P.cancelled, P.paid, "paid_after_cancelled", True),
    (P.paid, P.returned, "returned_after_paid", False),
    (P.failed, P.paid, "paid_after_failed", False),
    (P.submitted, P.paid, None, False),
    (P.cancel_requested, P.cancelled, None, False),
    (P.sending, P.cancelled, None, False),
])
def test_contradictions(current: P, target: P, kind: str | None, overpayment: bool) -> None:
    tr = transition(current, target, Cause.callback)
    assert tr is not None
    found = contradiction(tr)
    assert (found.kind if found else None) == kind
    assert (found.overpayment if found else False) == overpayment


def test_fx_two_decimal_currency_rounds_half_even() -> None:
    at = datetime(2026, 11, 20, tzinfo=UTC)
    c = convert(Money.parse("100.00", "MYR"), "BDT", Decimal("26.12345"), "bank", at)
    assert c.paid == Money.parse("2612.34", "BDT") and c.exact == Decimal("2612.3450000")
    assert c.rounding_minor == 0  # 261234.5 minor -> paid 261234: -0.5 rounds half-even to 0
    c = convert(Money.parse("100.00", "MYR"), "NPR", Decimal("28.4567"), "bank", at)
    assert c.paid == Money.parse("2845.67", "NPR") and c.rounding_minor == 0


def test_fx_whole_unit_rail_rounds_down_and_records_difference() -> None:
    at = datetime(2026, 11, 20, tzinfo=UTC)
    c = convert(Money.parse("10.00", "MYR"), "PKR", Decimal("63.789"), "SBP", at, digits=0)
    assert c.paid == Money.parse("637.00", "PKR")
    assert c.rounding_minor == -89  # paid 637.00 - exact 637.89
    c = convert(Money.parse("10.00", "MYR"), "PKR", Decimal("63.789"), "SBP", at)
    assert c.paid == Money.parse("637.89", "PKR") and c.rounding_minor == 0  # a rail of paisa
    with pytest.raises(ValueError):
        convert(Money.parse("10.00", "MYR"), "PKR", Decimal("0"), "SBP", at)
