"""Outbox retry policy by error class, and the circuit breaker: plain Python, no database."""

from __future__ import annotations

from datetime import timedelta

from gateway.errors import OutcomeUnknownError, PermanentDeliveryError, TransientDeliveryError
from gateway.outbox.breaker import CircuitBreakers
from gateway.outbox.retry import RetryPolicy


def test_policy_by_error_class() -> None:
    p = RetryPolicy(initial=1.0, max_delay=300.0, max_age=timedelta(hours=1))
    assert not p.decide(PermanentDeliveryError("x"), 1, timedelta(0)).retry
    t = p.decide(TransientDeliveryError("x"), 1, timedelta(0))
    assert t.retry and t.reason == "delivery" and t.delay <= timedelta(seconds=2)
    u = p.decide(OutcomeUnknownError("x"), 1, timedelta(0))
    assert u.retry and u.reason == "unknown"
    assert p.decide(RuntimeError("bug"), 1, timedelta(0)).reason == "internal"
    old = p.decide(TransientDeliveryError("x"), 1, timedelta(hours=2))
    assert not old.retry and "older" in old.reason
    late = [p.decide(TransientDeliveryError("x"), 12, timedelta(0)).delay for _ in range(20)]
    assert max(late) <= timedelta(seconds=300) and len(set(late)) > 1  # capped, jittered


def test_breaker_opens_and_half_opens() -> None:
    now = [0.0]
    b = CircuitBreakers(threshold=3, cooldown=10, monotonic=lambda: now[0])
    for _ in range(2):
        b.failure("rail")
    assert b.open_destinations() == []
    b.failure("rail")
    assert b.open_destinations() == ["rail"]
    now[0] = 11
    assert b.open_destinations() == []  # half-open: one batch may probe
    b.failure("rail")
    assert b.open_destinations() == ["rail"]
    b.success("rail")
    assert b.open_destinations() == []
