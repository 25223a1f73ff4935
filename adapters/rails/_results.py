"""Folding per-payout results into the seam's ``submit`` contract, shared by both adapters."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.errors import (
    DeliveryError,
    OutcomeUnknownError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from gateway.ports.rail import PayoutResult, PayoutStatus

__all__ = ["raise_for_results"]


def raise_for_results(results: Sequence[PayoutResult]) -> list[PayoutStatus]:
    """Return the statuses if every payout has one; otherwise raise the most cautious error.

    Unknown outcome wins over transient, transient over permanent: whichever the dispatcher
    does for the whole submit is then safe for every payout in it (asking ``status`` is harmless
    for one that was answered; resending an answered payout is deduplicated by its key). The
    raised error carries ``results`` (every payout's status or error), so no answer is lost.
    """
    errors = [r.error for r in results if r.error is not None]
    if not errors:
        return [r.status for r in results if r.status is not None]
    if len(results) == 1:
        raise errors[0]
    for cls in (OutcomeUnknownError, TransientDeliveryError, PermanentDeliveryError):
        picked = [e for e in errors if isinstance(e, cls)]
        if picked:
            err: DeliveryError = cls(
                f"{len(errors)} of {len(results)} payouts failed; first: {picked[0]}"
            )
            err.results = list(results)  # type: ignore[attr-defined]
            raise err from picked[0]
    raise errors[0]  # every DeliveryError subclass is one of the three above
