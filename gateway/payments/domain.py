"""The payment state machine: plain Python, no I/O.

    instructed ──▶ sending ──▶ submitted ──▶ paid ──▶ reconciled ──▶ returned
                                                 └──▶ returned
        │             │  ▲        │  └──────▶ failed | returned | cancelled
        │             ▼  │ (no record: resend the stored instruction)
        │           unknown ──▶ submitted | paid | failed | returned
        │             │
        │   sending | unknown | submitted ──▶ cancel_requested ──▶ cancelled | paid | failed
        ▼                                                           | returned  (the rail's word)
    cancelled  (only from instructed: never attempted)

``sending`` is the submission fact: it is committed, with the exact instruction to be sent,
before any rail call, so ``instructed`` proves the payout never left the hub. Only an
``instructed`` payment can be cancelled at once; from ``sending``, ``unknown`` or
``submitted`` a stop becomes ``cancel_requested`` and the rail's answer to its cancel call
decides. ``unknown`` is entered when a request may have arrived but no answer came back.

Rail answers are facts that may arrive late, twice or out of order (a ``processing`` callback
after the ``paid`` one): ``after_rail_state`` turns them into a transition only when they move
the payment forward, and ignores the rest. A rail report that contradicts a recorded outcome
(paid after cancelled, paid despite a cancel request, returned after paid, paid after failed)
is never dropped: it moves the payment to the rail's truth and ``contradiction`` names the
discrepancy it opens for ops.

``reconciled`` is entered only from ``paid``, by a reconciliation run that found the payout on
the rail's statement with the same amount and currency (cause ``reconciled``, the run in the
event detail); a later return still moves it to ``returned`` and is announced like a return
after ``paid``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.ports.rail import PayoutState

__all__ = [
    "FINAL",
    "TRANSITIONS",
    "Cause",
    "IllegalTransition",
    "PaymentState",
    "Transition",
    "Contradiction",
    "after_rail_state",
    "contradiction",
    "transition",
]


class PaymentState(StrEnum):
    instructed = "instructed"  # never attempted: nothing has left the hub
    sending = "sending"  # the submission fact: the instruction is stored, a call may be out
    submitted = "submitted"
    unknown = "unknown"
    paid = "paid"
    reconciled = "reconciled"  # paid, and proven on the rail's statement by a run
    failed = "failed"
    returned = "returned"
    cancel_requested = "cancel_requested"  # stopped while the rail may hold it: ask it
    cancelled = "cancelled"


class Cause(StrEnum):
    """Why a payment changed state (recorded with every transition)."""

    instructed = "instructed"  # the back office or a pension schedule created it
    submit_attempt = "submit_attempt"  # committed before the first rail call
    rail_answer = "rail_answer"  # the rail's answer to our submit
    rail_not_taken = "rail_not_taken"  # the first attempt certainly never reached the rail
    rail_unknown = "rail_unknown"  # sent, no answer: outcome unknown
    rail_no_record = "rail_no_record"  # asked after an unknown outcome: the rail never got it
    rail_refused = "rail_refused"  # the rail refused the payout for good (not a transition)
    status_poll = "status_poll"  # the rail's status, asked by the hub
    callback = "callback"  # the rail's signed callback
    cancelled = "cancelled"  # the back office cancelled (or asked the rail to cancel) it
    death_notified = "death_notified"  # a death.notify stopped it (or asked the rail to)
    rail_cancel = "rail_cancel"  # the rail's answer to the hub's cancel call
    payout_updated = "payout_updated"  # beneficiary.update changed the account (no transition)
    payout_update_refused = "payout_update_refused"  # already at the rail: kept its account
    partner_confirmed = "partner_confirmed"  # payment.confirm (no transition)
    pension_prorated = "pension_prorated"  # how a part period's amount was derived
    reconciled = "reconciled"  # a reconciliation run found the payout on the statement
    statement = "statement"  # a return or reversal read from the rail's statement by a run
    ops_resolved = "ops_resolved"  # ops settled the outcome with the rail's word (four eyes)


P = PaymentState
_RAIL_OUTCOMES = frozenset({P.submitted, P.unknown, P.paid, P.failed, P.returned})
TRANSITIONS: dict[PaymentState, frozenset[PaymentState]] = {
    P.instructed: frozenset({P.sending, P.cancelled}),
    # A dispatcher that sent and died before recording the answer leaves it sending; the
    # resend of the stored instruction (same key, same body) learns what became of it.
    # Back to instructed only when the first attempt certainly did not reach the rail.
    P.sending: _RAIL_OUTCOMES | {P.instructed, P.cancel_requested, P.cancelled},
    P.unknown: frozenset({P.submitted, P.paid, P.failed, P.returned, P.cancel_requested,
                          P.cancelled}),
    P.submitted: frozenset({P.paid, P.failed, P.returned, P.cancel_requested, P.cancelled}),
    P.cancel_requested: frozenset({P.cancelled, P.paid, P.failed, P.returned}),
    P.paid: frozenset({P.reconciled, P.returned}),
    P.reconciled: frozenset({P.returned}),
    # Only a rail report contradicting the record leaves these (see ``contradiction``).
    P.failed: frozenset({P.paid, P.returned}),
    P.returned: frozenset(),
    P.cancelled: frozenset({P.paid, P.failed, P.returned}),
}
FINAL = frozenset({P.failed, P.returned, P.cancelled})  # nothing left to ask the rail

_FROM_RAIL = {
    PayoutState.accepted: P.submitted,
    PayoutState.processing: P.submitted,
    PayoutState.paid: P.paid,
    PayoutState.failed: P.failed,
    PayoutState.returned: P.returned,
    PayoutState.cancelled: P.cancelled,
}


class IllegalTransition(ValueError):
    """The state machine does not allow this change."""


@dataclass(frozen=True, slots=True)
class Transition:
    from_state: PaymentState | None
    to_state: PaymentState
    cause: Cause
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Contradiction:
    """A rail report that disagrees with what the hub had recorded (a discrepancy for ops)."""

    kind: str  # e.g. paid_after_cancelled, returned_after_paid
    overpayment: bool  # money left after the hub had stopped the payment


def contradiction(tr: Transition) -> Contradiction | None:
    """Return the discrepancy a transition reveals, or None if it is ordinary progress."""
    frm, to = tr.from_state, tr.to_state
    if frm == P.cancel_requested and to in (P.paid, P.returned):
        return Contradiction(f"{to}_after_cancel_request", overpayment=True)
    if frm == P.cancelled and to != P.cancelled:
        return Contradiction(f"{to}_after_cancelled", overpayment=to in (P.paid, P.returned))
    if frm == P.failed:
        return Contradiction(f"{to}_after_failed", overpayment=False)
    if frm in (P.paid, P.reconciled) and to == P.returned:
        return Contradiction("returned_after_paid", overpayment=False)
    return None


def transition(current: PaymentState, target: PaymentState, cause: Cause,
               detail: str | None = None) -> Transition | None:
    """Return the transition to ``target``, None if already there.

    Raises:
        IllegalTransition: the machine does not allow it.
    """
    if current == target:
        return None
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"a payment cannot go from {current} to {target} ({cause})")
    return Transition(current, target, cause, detail)


def after_rail_state(current: PaymentState, rail_state: PayoutState, cause: Cause,
                     detail: str | None = None) -> Transition | None:
    """Return the transition a rail's report causes, or None if it is stale or a repeat."""
    target = _FROM_RAIL[rail_state]
    if target == current or target not in TRANSITIONS[current]:
        return None

    return Transition(current, target, cause, detail)
