"""The in-process metrics (counters, histograms, the circuit gauge) and the ``Observer``
that records them with closed labels.

The metric objects live in prometheus-client's default registry, as the library intends. In a
process started by ``gateway serve`` or ``gateway dispatch`` the environment names a
multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``, set before this module is imported):
every process writes its values there and whichever process is scraped reports the sum over
all of them (see ``gateway.observability.exposition``). Nothing here reads the database.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram

from gateway.observability.labels import HTTP_METHODS, OTHER, PROBLEM_CODES, closed

__all__ = [
    "CIRCUIT_OPEN", "DELIVERY_SECONDS", "HTTP_DURATION", "INTAKE_MESSAGES", "Observer",
    "RETRIES",
]

HTTP_DURATION = Histogram(
    "px_http_request_duration_seconds", "HTTP requests by route template, method and status.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
INTAKE_MESSAGES = Counter(
    "px_intake_messages_total", "Partner messages accepted or refused, by problem code.",
    ["partner", "outcome", "code"])
DELIVERY_SECONDS = Histogram(
    "px_outbox_delivery_seconds", "Outbox work done: seconds from enqueue to done.",
    ["destination", "kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0))
RETRIES = Counter(
    "px_outbox_retries_total", "Outbox attempts that failed and were rescheduled.",
    ["destination", "kind"])
# max over processes: a destination is open if any dispatcher has left it alone; "livemax"
# drops the values of processes that have died (exposition removes their files).
CIRCUIT_OPEN = Gauge(
    "px_circuit_open", "1 while a dispatcher's circuit breaker leaves the destination alone.",
    ["destination"], multiprocess_mode="livemax")


@dataclass
class Observer:
    """Records the in-process metrics, closing every label to the sets known at start.

    ``partners``: the registry's ids; ``destinations``: partner ids, rail names and the hub;
    ``kinds``: the outbox handlers' kinds. Built by the composition root.
    """

    partners: Collection[str] = frozenset()
    destinations: Collection[str] = frozenset()
    kinds: Collection[str] = frozenset()
    _open: set[str] = field(default_factory=set)
    _seen: bool = False

    def intake(self, partner: str | None, code: str | None) -> None:
        """Count one message accepted (``code`` None) or refused with a problem code."""
        INTAKE_MESSAGES.labels(
            partner=closed(partner, self.partners),
            outcome="accepted" if code is None else "refused",
            code="ok" if code is None else closed(code, PROBLEM_CODES)).inc()

    def delivered(self, destination: str, kind: str, seconds: float) -> None:
        DELIVERY_SECONDS.labels(*self._dest_kind(destination, kind)).observe(max(0.0, seconds))

    def retried(self, destination: str, kind: str) -> None:
        RETRIES.labels(*self._dest_kind(destination, kind)).inc()

    def circuits(self, open_destinations: Iterable[str]) -> None:
        """Set the circuit gauge of every known destination: 1 if open, else 0."""
        now_open = {closed(d, self.destinations) for d in open_destinations}
        if self._seen and now_open == self._open:
            return
        for d in {*self.destinations, *now_open, *self._open}:
            CIRCUIT_OPEN.labels(destination=d).set(1 if d in now_open else 0)
        self._open, self._seen = now_open, True

    def _dest_kind(self, destination: str, kind: str) -> tuple[str, str]:
        return closed(destination, self.destinations), closed(kind, self.kinds)


def http_labels(route: str | None, method: str, status: int) -> tuple[str, str, str]:
    """The HTTP histogram's labels: a route template (None: no route matched), a known method,
    and the status code."""
    return (route or OTHER, method if method in HTTP_METHODS else OTHER, str(status))
