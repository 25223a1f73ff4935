"""The one retry policy: exponential backoff with jitter and a maximum age, by error class.

Decided from the error's class (``DeliveryError.retryable``), never from its message. A
counterparty's ``Retry-After`` is a floor under the backoff. Work that follows money which may
already be at a rail (``DeliveryError.in_flight``) is never given up for its age: it goes on
at the longest backoff and the decision says so, for the alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tenacity import RetryCallState, wait_random_exponential

from gateway.errors import DeliveryError, OutcomeUnknownError, PermanentDeliveryError

__all__ = ["Decision", "RetryPolicy"]


@dataclass(frozen=True, slots=True)
class Decision:
    retry: bool
    delay: timedelta
    reason: str
    alert: bool = False  # kept trying past the maximum age: an operator must look


class RetryPolicy:
    """When to try a failed task again, and whether to give up."""

    def __init__(self, *, initial: float = 1.0, max_delay: float = 300.0,
                 max_age: timedelta = timedelta(days=3), unknown_initial: float = 2.0) -> None:
        self.max_age = max_age
        self._max_delay = max_delay
        self._waits = {
            "delivery": wait_random_exponential(multiplier=initial, max=max_delay),
            # An unknown outcome is resolved by asking the counterparty; ask again soon.
            "unknown": wait_random_exponential(multiplier=unknown_initial, max=max_delay / 4),
            # Our own bug or a database hiccup: back off harder, keep the task for operators.
            "internal": wait_random_exponential(multiplier=initial * 5, max=max_delay * 2),
        }

    def decide(self, error: BaseException, attempts: int, age: timedelta) -> Decision:
        if isinstance(error, PermanentDeliveryError) or (
            isinstance(error, DeliveryError) and not error.retryable
        ):
            return Decision(False, timedelta(0), "permanent")
        old = age > self.max_age
        if old and not (isinstance(error, DeliveryError) and error.in_flight):
            return Decision(False, timedelta(0), f"older than {self.max_age}")
        if isinstance(error, OutcomeUnknownError):
            family = "unknown"
        elif isinstance(error, DeliveryError):
            family = "delivery"
        else:
            family = "internal"
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = max(1, attempts)
        delay = self._waits[family](state)
        if isinstance(error, DeliveryError) and error.retry_after is not None:
            delay = max(delay, float(error.retry_after))
        if old:
            return Decision(True, timedelta(seconds=max(delay, self._max_delay)),
                            f"{family}; in flight and older than {self.max_age}", alert=True)
        return Decision(True, timedelta(seconds=delay), family)
