"""The fault plan, one type for every simulator (rail and partner): ``Faults``.

A rule names a ``Fault`` and fires either with probability ``rate`` (drawn from a seeded RNG, so
a run is reproducible) or on the next ``count`` matching events, or both (``count`` caps how
often a probabilistic rule fires). Request faults may be limited to a path prefix and method.

Request faults (applied by ``FaultMiddleware`` around the whole app, so every endpoint has them):

- ``latency``: wait ``seconds`` before handling.
- ``timeout``: handle (the rail acts), then hold the answer ``seconds``: past the client's read
  timeout this is a read timeout after sending.
- ``error_before``: answer ``status`` (5xx) without acting.
- ``error_after``: act, then answer ``status`` instead: the "paid but answered with an error" case.
- ``reset_before`` / ``reset_after``: drop the TCP connection (RST) without answering, before or
  after acting.
- ``throttle``: answer ``status`` (429 or 503) with ``Retry-After: retry_after`` without acting.

Simulator faults (consulted by the simulators' own code):

- ``lost_callback``: a callback is never sent; ``duplicate_callback``: it is sent twice.
- ``statement_missing`` / ``statement_extra`` / ``statement_duplicate`` / ``statement_mismatch``:
  a statement drops a line, gains a line for an unknown payout, repeats a line, or reports an
  amount one minor unit off; ``statement_currency_mismatch``: its first line is in another
  currency; ``statement_unbalanced``: its closing balance (camt.053) or control total (CSV) is
  one minor unit off; ``statement_sequence_gap``: its sequence number skips one;
  ``statement_truncated``: the file is cut off (no CSV trailer; camt breaks off mid-document);
  ``statement_late``: the statement is not available yet (404) on this many asks (``count``).

Partner simulator faults (``PARTNER_FAULTS``, armed with ``Faults.set`` or the partner
simulators' ``POST /_sim/faults``, consulted by ``PartnerSimulator``; each fires on the next
``count`` messages, except the switches ``down`` and ``duplicate``, on until cleared):

- ``slow``: wait ``seconds``; ``error_5xx``: answer 503 without taking the message;
  ``error_after``: take it, then answer 500; ``reset``: drop the connection;
  ``bad_signature``: sign the receipt wrongly; ``down``: refuse everything with 503;
  ``duplicate``: send each message twice.

The rail vocabulary (``RAIL_FAULTS``) is what ``add`` and the rail admin API accept; the partner
vocabulary is what ``set`` accepts. ``error_after`` is in both: the same fault.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["PARTNER_FAULTS", "RAIL_FAULTS", "REQUEST_FAULTS", "Fault", "FaultRule", "FaultRuleIn",
           "Faults"]


class Fault(StrEnum):
    """What can go wrong."""

    latency = "latency"
    timeout = "timeout"
    error_before = "error_before"
    error_after = "error_after"
    reset_before = "reset_before"
    reset_after = "reset_after"
    throttle = "throttle"
    lost_callback = "lost_callback"
    duplicate_callback = "duplicate_callback"
    statement_missing = "statement_missing"
    statement_extra = "statement_extra"
    statement_duplicate = "statement_duplicate"
    statement_mismatch = "statement_mismatch"
    statement_currency_mismatch = "statement_currency_mismatch"
    statement_unbalanced = "statement_unbalanced"
    statement_sequence_gap = "statement_sequence_gap"
    statement_truncated = "statement_truncated"
    statement_late = "statement_late"
    slow = "slow"
    error_5xx = "error_5xx"
    reset = "reset"
    bad_signature = "bad_signature"
    down = "down"
    duplicate = "duplicate"


REQUEST_FAULTS = frozenset(
    {
        Fault.latency,
        Fault.timeout,
        Fault.error_before,
        Fault.error_after,
        Fault.reset_before,
        Fault.reset_after,
        Fault.throttle,
    }
)


# The partner simulators' vocabulary, in the order their error messages list it.
PARTNER_FAULTS = ("slow", "error_5xx", "error_after", "reset", "bad_signature", "down",
                  "duplicate")
_SWITCHES = frozenset({Fault.down, Fault.duplicate})
RAIL_FAULTS = frozenset(Fault) - {Fault(f) for f in PARTNER_FAULTS if f != "error_after"}


@dataclass(slots=True)
class FaultRule:
    """One armed fault; ``count`` counts down as it fires (``None``: unlimited)."""

    fault: Fault
    rate: float = 1.0
    count: int | None = None
    seconds: float = 0.0
    status: int = 500
    retry_after: int = 1
    path: str | None = None
    method: str | None = None

    def matches(self, fault: Fault, path: str, method: str) -> bool:
        return (
            self.fault == fault
            and (self.count is None or self.count > 0)
            and (self.path is None or path.startswith(self.path))
            and (self.method is None or self.method.upper() == method.upper())
        )


class FaultRuleIn(BaseModel):
    """The JSON form of a ``FaultRule`` for ``POST /_sim/faults``."""

    model_config = ConfigDict(extra="forbid")

    fault: Fault
    rate: float = Field(default=1.0, ge=0.0, le=1.0)
    count: int | None = Field(default=None, ge=1)
    seconds: float = Field(default=0.0, ge=0.0, le=60.0)
    status: int = Field(default=500, ge=400, le=599)
    retry_after: int = Field(default=1, ge=0, le=3600)
    path: str | None = None
    method: str | None = None

    @field_validator("fault")
    @classmethod
    def _a_rail_fault(cls, fault: Fault) -> Fault:
        if fault not in RAIL_FAULTS:
            raise ValueError(f"{fault.value!r} is not a rail fault")
        return fault


class Faults:
    """A thread-safe set of fault rules with a seeded RNG (a server may run in another thread)."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._rules: list[FaultRule] = []
        self.fired: Counter[Fault] = Counter()

    def add(
        self,
        fault: Fault | str,
        *,
        rate: float = 1.0,
        count: int | None = None,
        seconds: float = 0.0,
        status: int = 500,
        retry_after: int = 1,
        path: str | None = None,
        method: str | None = None,
    ) -> FaultRule:
        """Arm a fault; ``count=N`` makes it fire on the next N matching events only."""
        rule = FaultRuleIn(
            fault=Fault(fault),
            rate=rate,
            count=count,
            seconds=seconds,
            status=status,
            retry_after=retry_after,
            path=path,
            method=method,
        )
        return self.add_rule(rule)

    def add_rule(self, rule: FaultRuleIn) -> FaultRule:
        """Arm a fault described by its validated JSON form."""
        armed = FaultRule(**rule.model_dump())
        with self._lock:
            self._rules.append(armed)
        return armed

    def next(self, fault: Fault | str, n: int = 1, **kwargs: Any) -> FaultRule:
        """Arm a fault for the next ``n`` matching events."""
        return self.add(fault, count=n, **kwargs)

    def clear(self, reseed: int | None = None) -> None:
        """Disarm every fault (and optionally reseed the RNG)."""
        with self._lock:
            self._rules.clear()
            self.fired.clear()
            if reseed is not None:
                self._rng.seed(reseed)

    def draw(self, fault: Fault, path: str = "", method: str = "") -> FaultRule | None:
        """Return the rule that fires for this event, consuming one of its ``count``."""
        if not self._rules:  # nothing armed (the common case): no lock per request
            return None
        with self._lock:
            for rule in self._rules:
                if not rule.matches(fault, path, method):
                    continue
                if rule.rate < 1.0 and self._rng.random() >= rule.rate:
                    continue
                if rule.count is not None:
                    rule.count -= 1
                self.fired[fault] += 1
                return rule
            return None

    def snapshot(self) -> list[dict[str, Any]]:
        """Return the armed rules as JSON-able dicts."""
        with self._lock:
            return [asdict(r) for r in self._rules if r.count is None or r.count > 0]

    # ---- the partner simulators' vocabulary (next-N counts and two switches) ---------------

    def set(self, fault: str, count: int = 1, seconds: float = 0.0) -> None:
        """Arm a partner fault for the next ``count`` messages (a switch: on if ``count > 0``).

        Raises:
            ValueError: ``fault`` is not one of ``PARTNER_FAULTS``.
        """
        if fault not in PARTNER_FAULTS:
            raise ValueError(f"unknown fault {fault!r} (one of {', '.join(PARTNER_FAULTS)})")
        if Fault(fault) in _SWITCHES:
            self._switch(Fault(fault), count > 0)
            return
        rule = FaultRule(Fault(fault), count=count, seconds=seconds)
        with self._lock:
            for i, armed in enumerate(self._rules):
                if armed.fault == rule.fault:
                    self._rules[i] = rule  # re-arming replaces: the count is what is left
                    return
            self._rules.append(rule)

    def take(self, fault: Fault | str) -> bool:
        """Consume one occurrence of a counted fault; return whether it fires."""
        return self.draw(Fault(fault)) is not None

    @property
    def counts(self) -> dict[str, int]:
        """Occurrences left per counted partner fault (a spent fault stays, at 0)."""
        with self._lock:
            return {r.fault.value: r.count for r in self._rules
                    if r.fault.value in PARTNER_FAULTS and r.fault not in _SWITCHES
                    and r.count is not None}

    @property
    def down(self) -> bool:
        """Refuse everything (partner simulators)."""
        return self._switched(Fault.down)

    @down.setter
    def down(self, on: bool) -> None:
        self._switch(Fault.down, on)

    @property
    def duplicate(self) -> bool:
        """Send each message twice (partner simulators)."""
        return self._switched(Fault.duplicate)

    @duplicate.setter
    def duplicate(self, on: bool) -> None:
        self._switch(Fault.duplicate, on)

    def _switched(self, fault: Fault) -> bool:
        with self._lock:
            return any(r.fault == fault for r in self._rules)

    def _switch(self, fault: Fault, on: bool) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if r.fault != fault]
            if on:
                self._rules.append(FaultRule(fault))
