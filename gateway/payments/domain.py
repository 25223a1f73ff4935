"""The payment state machine: plain Python, no I/O.

    instructed ──▶ submitted ──▶ paid ──▶ returned
        │  ▲           │  └──────▶ failed
        │  │           └─────────▶ returned
        ▼  │ (rail has no record: safe to send again)
      unknown ──▶ submitted | paid | failed | returned
        │
    instructed ──▶ failed | paid | cancelled

``unknown`` is entered when a request to the rail may have arrived but no answer came back
(timeout, reset, 5xx after sending). Nothing is sent again from ``unknown``: the rail is asked
for the payout's status first, and only if it has no record is the payment ``instructed`` again.
``failed``, ``returned`` and ``cancelled`` are final; ``paid`` may still be ``returned``.

Rail answers are facts that may arrive late, twice or out of order (a ``processing`` callback
after the ``paid`` one): ``after_rail_state`` turns them into a transition only when they move
the payment forward, and ignores the rest.
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
    "after_rail_state",
    "transition",
]


class PaymentState(StrEnum):
    instructed = "instructed"
    submitted = "submitted"
    unknown = "unknown"
    paid = "paid"
    failed = "failed"
    returned = "returned"
    cancelled = "cancelled"


class Cause(StrEnum):
    """Why a payment changed state (recorded with every transition)."""

    instructed = "instructed"  # the back office or a pension schedule created it
    rail_answer = "rail_answer"  # the rail's answer to our submit
    rail_unknown = "rail_unknown"  # sent, no answer: outcome unknown
    rail_no_record = "rail_no_record"  # asked after an unknown outcome: the rail never got it
    rail_refused = "rail_refused"  # the rail refused the payout for good (not a transition)
    status_poll = "status_poll"  # the rail's status, asked by the hub
    callback = "callback"  # the rail's signed callback
    cancelled = "cancelled"  # the back office cancelled it before it was sent
    death_notified = "death_notified"  # a death.notify stopped it before it was sent
    payout_updated = "payout_updated"  # beneficiary.update changed the account (no transition)
    partner_confirmed = "partner_confirmed"  # payment.confirm (no transition)


P = PaymentState
TRANSITIONS: dict[PaymentState, frozenset[PaymentState]] = {
    # A rail may report any state on the hub's first recorded contact: a dispatcher that
    # sent the payout and died before recording the answer leaves it instructed, and the
    # resend (same idempotency key) then learns what became of it meanwhile, even returned.
    P.instructed: frozenset({P.submitted, P.unknown, P.paid, P.failed, P.returned,
                             P.cancelled}),
    P.unknown: frozenset({P.instructed, P.submitted, P.paid, P.failed, P.returned}),
    P.submitted: frozenset({P.paid, P.failed, P.returned}),
    P.paid: frozenset({P.returned}),
    P.failed: frozenset(),
    P.returned: frozenset(),
    P.cancelled: frozenset(),
}
FINAL = frozenset(s for s, targets in TRANSITIONS.items() if not targets)

_FROM_RAIL = {
    PayoutState.accepted: P.submitted,
    PayoutState.processing: P.submitted,
    PayoutState.paid: P.paid,
    PayoutState.failed: P.failed,
    PayoutState.returned: P.returned,
}


class IllegalTransition(ValueError):
    """The state machine does not allow this change."""


@dataclass(frozen=True, slots=True)
class Transition:
    from_state: PaymentState | None
    to_state: PaymentState
    cause: Cause
    detail: str | None = None


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
