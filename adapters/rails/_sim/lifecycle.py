"""The payout lifecycle both simulators follow, with its test rules in one place.

``accepted -> processing -> paid``; an account starting ``FAIL`` ends ``failed``; one starting
``RET`` is paid and then ``returned`` one step later.
"""

from __future__ import annotations

from gateway.ports.rail import PayoutState

__all__ = ["next_state"]


def next_state(state: PayoutState, account: str) -> tuple[PayoutState, str | None] | None:
    """Return the state after one step and its reason, or None if the payout is final."""
    if state == PayoutState.accepted:
        return PayoutState.processing, None
    if state == PayoutState.processing:
        if account.startswith("FAIL"):
            return PayoutState.failed, "account_blocked"
        return PayoutState.paid, None
    if state == PayoutState.paid and account.startswith("RET"):
        return PayoutState.returned, "account_closed"
    return None
