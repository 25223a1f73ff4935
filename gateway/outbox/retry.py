"""The one retry policy: exponential backoff with jitter and a maximum age, by error class.

Decided from the error's class (``DeliveryError.retryable``), never from its message. A
counterparty's ``Retry-After`` is a floor under the backoff. Work that follows money which may
already be at a rail (``DeliveryError.in_flight``) is never given up for its age: it goes on
at the longest backoff and the decision says so, for the alert. Work on a payment changed
beside the hub (``EvidenceMismatchError``) is held the same way, with an alert at once.

A **deterministic** failure would fail the same way on every attempt, so it is dead-lettered at
once and says nothing about the destination's health (it never feeds a circuit breaker): a
``ProblemError`` (a processor's business refusal, or a validation error such as
``schema_violation``), a pydantic ``ValidationError``, and the database's ``IntegrityError`` and
``DataError`` (a constraint or a value the column cannot hold). Everything else that is not a
``DeliveryError`` is an internal failure (a bug, the database away): retried with a long
backoff.

``describe`` is the only text of a failure the outbox stores or logs: it never carries SQL or
its parameters (national ids, account numbers), only the error's class and database codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pydantic import ValidationError
from sqlalchemy import exc as sa_exc
from tenacity import RetryCallState, wait_random_exponential

from gateway.errors import (
    DeliveryError,
    EvidenceMismatchError,
    OutcomeUnknownError,
    PermanentDeliveryError,
    ProblemError,
)

__all__ = ["Decision", "RetryPolicy", "describe", "is_deterministic"]


@dataclass(frozen=True, slots=True)
class Decision:
    retry: bool
    delay: timedelta
    reason: str
    deterministic: bool = False  # would fail the same way again: not the destination's fault
    alert: bool = False  # kept trying past the maximum age: an operator must look


def is_deterministic(error: BaseException) -> bool:
    """Whether ``error`` would recur on every attempt (see the module docstring)."""
    return isinstance(error, ProblemError | ValidationError | sa_exc.IntegrityError
                      | sa_exc.DataError)


def describe(error: BaseException) -> str:
    """One line naming the failure, without SQL, parameters or payload values."""
    name = type(error).__name__
    if isinstance(error, sa_exc.DBAPIError):
        orig = error.orig
        parts = [f"SQLSTATE {code}" for code in [getattr(orig, "sqlstate", None)] if code]
        parts += [f"{code}" for code in [getattr(orig, "sqlite_errorname", None)] if code]
        cause = getattr(orig, "__cause__", None)
        parts += [f"constraint {c}" for c in [getattr(cause, "constraint_name", None)] if c]
        return f"{name} ({', '.join(parts)})" if parts else name
    if isinstance(error, sa_exc.SQLAlchemyError):
        return name  # its text may quote the statement
    if isinstance(error, ValidationError):
        fields = ", ".join(".".join(map(str, e["loc"])) + f" ({e['type']})"
                           for e in error.errors()[:5])
        return f"{name}: {fields}"
    if isinstance(error, ProblemError):
        return f"{name} {error.code}: {error.detail}"[:500]
    return f"{name}: {error}"[:500]


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
        if isinstance(error, EvidenceMismatchError):
            # Stored evidence says the payment was changed beside the hub: retrying cannot
            # help, and giving up would forget a payment. Held, at the longest backoff, until
            # an operator restores it.
            return Decision(True, timedelta(seconds=self._max_delay * 2),
                            "held: changed beside the hub", alert=True)
        if is_deterministic(error):
            return Decision(False, timedelta(0), "deterministic", deterministic=True)
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
