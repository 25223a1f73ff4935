"""Gauges of what the database holds, computed at scrape time (``StateCollector``).

Each source is one cheap query (existing indexes; open work and dead letters, not the whole
history) returning ``Reading``s of the gauges declared in ``GAUGES``. The collector runs each at
most once per ``ttl`` seconds per process (``ttls`` gives a longer one to a read that grows with
history: settled payments), however many scrapes arrive (a scrape storm costs one round of
queries), on a read-only unit of work with a statement timeout on PostgreSQL. A source that
fails is logged and its gauges are left out until it next runs (absent, never a stale or a
made-up zero).

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
    # Per source, a longer cache than ``ttl`` for reads that grow with history.
    ttls: Mapping[str, float] = field(default_factory=dict)
    _readings: dict[str, list[Reading]] = field(default_factory=dict)
    _at: dict[str, float] = field(default_factory=dict)
    _lock: asyncio.Lock | None = None

    async def refresh(self) -> None:
        """Run the sources whose readings are older than their cache lifetime."""
        if not self._stale():
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            stale = self._stale()  # another scrape may have refreshed while this one waited
            if not stale:
                return
            ctx = self.context(self.clock())
            for name in stale:
                readings: list[Reading] = []
                try:
                    async with self.uow(read_only=True) as uow:
                        if uow.conn.dialect.name == "postgresql":
                            await uow.conn.execute(text(
                                f"SET LOCAL statement_timeout = {int(self.statement_timeout_ms)}"))
                        readings = list(await self.sources[name](uow.conn, ctx))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # one failing source must not hide the others
                    log.warning("metrics source %s failed: %s", name, type(exc).__name__)
                self._readings[name], self._at[name] = readings, time.monotonic()

    def _stale(self) -> list[str]:
        now = time.monotonic()
        return [name for name in self.sources
                if name not in self._at or now - self._at[name] >= self.ttls.get(name, self.ttl)]

    def collect(self) -> Iterator[Metric]:
        by_metric: dict[str, list[Reading]] = {}
        for r in (r for rs in self._readings.values() for r in rs):
            by_metric.setdefault(r.metric, []).append(r)
        for name, (doc, labels) in GAUGES.items():
            if name not in by_metric:
                continue
            family = GaugeMetricFamily(name, doc, labels=list(labels))
            for r in by_metric[name]:
                family.add_metric(list(r.labels), r.value)
            yield family
