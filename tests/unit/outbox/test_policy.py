"""Outbox retry policy by error class, and the circuit breaker: plain Python, no database."""

from __future__ import annotations

from datetime import timedelta

from gateway.errors import (
    EvidenceMismatchError,
    OutcomeUnknownError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from gateway.outbox.breaker import CircuitBreakers, is_outage
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


def test_retry_after_is_a_floor_and_in_flight_work_is_never_too_old() -> None:
    p = RetryPolicy(initial=1.0, max_delay=300.0, max_age=timedelta(hours=1))
    throttled = TransientDeliveryError("429")
    throttled.retry_after = 120
    assert p.decide(throttled, 1, timedelta(0)).delay >= timedelta(seconds=120)
    in_flight = TransientDeliveryError("poll refused")
    in_flight.in_flight = True
    d = p.decide(in_flight, 1, timedelta(hours=2))
    assert d.retry and d.alert and d.delay >= timedelta(seconds=300)


def test_only_outages_count_against_a_destination() -> None:
    refused = PermanentDeliveryError("422 bad account")
    throttled = TransientDeliveryError("429")
    throttled.http_status = 429
    server = OutcomeUnknownError("502")
    server.http_status = 502
    assert not is_outage(refused) and not is_outage(throttled)
    assert not is_outage(RuntimeError("our own bug"))
    assert is_outage(server) and is_outage(TransientDeliveryError("connection refused"))


def test_work_on_a_payment_changed_beside_the_hub_is_held_with_an_alert() -> None:
    p = RetryPolicy(initial=1.0, max_delay=300.0, max_age=timedelta(hours=1))
    for age in (timedelta(0), timedelta(days=30)):  # never given up, however old
        d = p.decide(EvidenceMismatchError("payments pk 1 (payment P-1): ..."), 1, age)
        assert d.retry and d.alert and not d.deterministic
        assert d.delay == timedelta(seconds=600)
    assert not is_outage(EvidenceMismatchError("x"))
