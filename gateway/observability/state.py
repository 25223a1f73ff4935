"""Gauges of what the database holds, computed at scrape time (``StateCollector``).

Each source is one cheap, bounded query (existing indexes; open work and dead letters, not
the whole history, except ``px_payments``: see docs/metrics.md) returning ``Reading``s of the
gauges declared in ``GAUGES``. The collector runs them at most once per ``ttl`` seconds per
process, however many scrapes arrive (a scrape storm costs one round of queries), on a
read-only unit of work with a statement timeout on PostgreSQL. A source that fails is logged
and its gauges are left out of that scrape (absent, never a stale or a made-up zero).

These gauges are served by ``gateway serve`` only, from whichever worker is scraped, and are
never written to the multiprocess directory: they are one truth, not a per-process figure to
sum. A new source (reconciliation) is a function here-shaped plus one entry in the
composition root's ``state_sources()``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.clock import Clock, utcnow
from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["GAUGES", "Reading", "StateCollector", "StateContext", "StateSource"]

log = logging.getLogger(__name__)

# Every scrape-time gauge: name -> (help, label names). Sources may emit only these.
GAUGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "px_outbox_depth": ("Open outbox tasks (pending or leased).", ("destination", "kind")),
    "px_outbox_oldest_age_seconds": ("Age of the oldest open outbox task.",
                                     ("destination", "kind")),
    "px_outbox_dead_letters": ("Dead-lettered outbox tasks.", ("destination", "kind")),
    "px_payments": ("Payments by rail and state.", ("rail", "state")),
    "px_evidence_chain_lag_records": ("Evidence records committed but not yet chained.", ()),
    "px_evidence_chain_lag_seconds": ("Age of the oldest evidence record not yet chained.", ()),
    "px_reconciliation_last_verdict": ("1 for the verdict of the last reconciliation run.",
                                       ("rail", "verdict")),
    "px_reconciliation_residual_minor": ("Unreconciled residual of the last run, minor units.",
                                         ("rail", "currency")),
    "px_key_expiry_days": ("Days until a signing key's 'exp' (negative: expired).",
                           ("owner", "kid")),
}


@dataclass(frozen=True, slots=True)
class Reading:
    """One sample of a gauge of ``GAUGES``; labels in the gauge's label order."""

    metric: str
    labels: tuple[str, ...]
    value: float


@dataclass(frozen=True)
class StateContext:
    """What sources close their labels to (the sets known at start) and the scrape's time."""

    now: datetime
    destinations: Collection[str] = frozenset()
    kinds: Collection[str] = frozenset()
    rails: Collection[str] = frozenset()


StateSource = Callable[[AsyncConnection, StateContext], Awaitable[Sequence[Reading]]]


@dataclass
class StateCollector:
    """A prometheus-client collector over ``sources``, refreshed by ``refresh()``."""

    uow: UnitOfWorkFactory
    sources: Mapping[str, StateSource]
    context: Callable[[datetime], StateContext]
    ttl: float = 5.0
    clock: Clock = utcnow
    statement_timeout_ms: int = 2000
    _readings: list[Reading] = field(default_factory=list)
    _at: float | None = None
    _lock: asyncio.Lock | None = None

    async def refresh(self) -> None:
        """Run the sources unless their readings are younger than ``ttl``."""
        if self._fresh():
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._fresh():  # another scrape refreshed while this one waited
                return
            ctx = self.context(self.clock())
            readings: list[Reading] = []
            for name, source in self.sources.items():
                try:
                    async with self.uow(read_only=True) as uow:
                        if uow.conn.dialect.name == "postgresql":
                            await uow.conn.execute(text(
                                f"SET LOCAL statement_timeout = {int(self.statement_timeout_ms)}"))
                        readings += await source(uow.conn, ctx)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # one failing source must not hide the others
                    log.warning("metrics source %s failed: %s", name, type(exc).__name__)
            self._readings, self._at = readings, time.monotonic()

    def _fresh(self) -> bool:
        return self._at is not None and time.monotonic() - self._at < self.ttl

    def collect(self) -> Iterator[Metric]:
        by_metric: dict[str, list[Reading]] = {}
        for r in self._readings:
            by_metric.setdefault(r.metric, []).append(r)
        for name, (doc, labels) in GAUGES.items():
            if name not in by_metric:
                continue
            family = GaugeMetricFamily(name, doc, labels=list(labels))
            for r in by_metric[name]:
                family.add_metric(list(r.labels), r.value)
            yield family
