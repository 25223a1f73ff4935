"""A circuit breaker per destination, in this dispatcher process.

After ``threshold`` consecutive failures a destination is left alone for ``cooldown`` seconds
(its tasks are not claimed, so attempts and backoff budgets are not burnt on a partner that is
down); then one batch probes it (half-open) and a success closes the circuit. Only an outage
counts (``is_outage``): a transport failure or a 5xx, never a business refusal (a bad account
is that payout's problem, not the rail's) nor a throttle, which carries its own Retry-After.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.errors import DeliveryError, PermanentDeliveryError

__all__ = ["CircuitBreakers", "is_outage"]


def is_outage(error: BaseException) -> bool:
    """Does this failure say the destination is down (transport failure or 5xx)?"""
    if not isinstance(error, DeliveryError) or isinstance(error, PermanentDeliveryError):
        return False
    return error.http_status is None or error.http_status >= 500


@dataclass
class _Circuit:
    failures: int = 0
    opened_at: float | None = None


class CircuitBreakers:
    def __init__(self, threshold: int = 5, cooldown: float = 30.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._now = monotonic
        self._circuits: dict[str, _Circuit] = {}

    def open_destinations(self) -> list[str]:
        """Destinations whose tasks must not be claimed now."""
        now = self._now()
        return [d for d, c in self._circuits.items()
                if c.opened_at is not None and now - c.opened_at < self.cooldown]

    def success(self, destination: str) -> None:
        self._circuits.pop(destination, None)

    def failure(self, destination: str) -> None:
        c = self._circuits.setdefault(destination, _Circuit())
        c.failures += 1
        if c.failures >= self.threshold:
            c.opened_at = self._now()  # (re)open; a failed half-open probe restarts cooldown
