"""The reconciliation scheduler: runs each rail's due dates (``schedule.plan``) through a
``Reconciler``, one process at a time per (rail, date).

Several schedulers may run at once, on any hosts: each takes the (rail, date)'s job lock
(``gateway.storage.job_locks``) before it asks the runner whether the date is done and runs
it, so a date is run by one of them, and the runner's own idempotence covers the rest (a lock
lost with its connection). What a scheduler remembers (dates done, attempts at a late
statement) is in memory only: after a restart it asks the runner again, and a late
statement's backoff starts again from its first wait, still ending at the same deadline.

A rail's dates run in date order (``schedule.plan`` holds a date while an earlier one has no
run). A date held by this scheduler may have been run by another one: it learns that, as
anything recorded, by asking the runner under the lock, and it plans again after every attempt,
so the run it finds or makes releases the next date within the same tick. A restarted
scheduler thus walks a rail's dates oldest first in its first tick, finding each recorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from gateway.clock import Clock, iso_millis, pause, utcnow
from gateway.errors import TransientDeliveryError
from gateway.outbox.retry import describe
from gateway.reconciliation.schedule import (
    Action,
    Attempts,
    RailSchedule,
    Reconciler,
    RetryPlan,
    Step,
    plan,
)
from gateway.storage.job_locks import JobLocks

__all__ = ["Outcome", "Scheduler"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt at a (rail, date) came to."""

    rail: str
    day: date
    result: str  # "run" (verdict set), "done" (already recorded), "busy" (locked elsewhere),
    # "late" (no statement yet), "failed" (the runner or the database failed), "held" (not
    # tried: an earlier date of the rail has no run yet)
    verdict: str | None = None
    final: bool = False


class Scheduler:
    """Runs what ``plan`` says is due, each tick."""

    def __init__(self, reconciler: Reconciler, schedules: Mapping[str, RailSchedule],
                 locks: JobLocks, *, retry: RetryPlan | None = None, lookback_days: int = 7,
                 clock: Clock = utcnow) -> None:
        self.retry = retry or RetryPlan()
        if lookback_days < 1 or timedelta(days=lookback_days) <= self.retry.give_up_after:
            raise ValueError(f"the lookback ({lookback_days} days) must be at least a day and "
                             f"longer than the give-up deadline ({self.retry.give_up_after})")
        self._reconciler = reconciler
        self._schedules = dict(schedules)
        self._locks = locks
        self._lookback = lookback_days
        self._clock = clock
        self._attempts: dict[tuple[str, date], Attempts] = {}
        self._done: set[tuple[str, date]] = set()
        self._held: set[tuple[str, date]] = set()  # logged as held (once per date)

    def due(self) -> list[Step]:
        """What is due now (waiting steps included)."""
        return plan(self._clock(), self._schedules, self.retry, self._lookback,
                    self._attempts, self._done)

    async def tick(self, stop: asyncio.Event | None = None) -> list[Outcome]:
        """Run every due (rail, date) once, oldest first, then report those still held; stop
        early, between runs, when ``stop`` is set."""
        outcomes: list[Outcome] = []
        tried: set[tuple[str, date]] = set()
        while stop is None or not stop.is_set():
            # Planned again after each attempt: a date recorded releases the next at once.
            step = next((s for s in self.due() if s.action in (Action.RUN, Action.FINAL)
                         and (s.rail, s.day) not in tried), None)
            if step is None:
                break
            tried.add((step.rail, step.day))
            outcomes.append(await self._attempt(step))
        for step in self.due():
            if step.action is Action.HELD:
                outcomes.append(Outcome(step.rail, step.day, "held"))
                self._note_held(step)
        self._forget_old()
        return outcomes

    async def run_forever(self, stop: asyncio.Event, every: float) -> None:
        """Tick every ``every`` seconds until ``stop`` is set (between runs)."""
        while not stop.is_set():
            try:
                await self.tick(stop)
            except Exception:  # a planning bug must not end the process; it is logged
                log.exception("reconciliation scheduler tick failed")
            await pause(stop, every)

    async def _attempt(self, step: Step) -> Outcome:
        key = (step.rail, step.day)
        final = step.action is Action.FINAL
        try:
            async with self._locks.hold(f"reconcile:{step.rail}:{step.day.isoformat()}") as got:
                if not got:
                    return Outcome(step.rail, step.day, "busy")
                if await self._reconciler.done(step.rail, step.day):
                    self._done.add(key)
                    return Outcome(step.rail, step.day, "done")
                verdict = await self._reconciler.run(step.rail, step.day, final=final)
        except TransientDeliveryError:
            if final:
                # The runner broke its contract (a final run records, never raises "late").
                log.error("reconciliation rail=%s date=%s: the final run raised "
                          "TransientDeliveryError; retrying after the backoff",
                          step.rail, step.day)
            attempts = self._failed(key)
            if not final:
                log.warning("reconciliation rail=%s date=%s statement not available yet "
                            "(attempt %d); next attempt at %s", step.rail, step.day,
                            attempts.count, iso_millis(self._next(step, attempts)))
            return Outcome(step.rail, step.day, "late", final=final)
        except Exception as exc:  # the runner or the database: back off like a late statement
            attempts = self._failed(key)
            log.error("reconciliation rail=%s date=%s failed (attempt %d): %s; next attempt "
                      "at %s", step.rail, step.day, attempts.count, describe(exc),
                      iso_millis(self._next(step, attempts)))
            return Outcome(step.rail, step.day, "failed", final=final)
        self._done.add(key)
        self._attempts.pop(key, None)
        log.info("reconciliation rail=%s date=%s verdict=%s%s", step.rail, step.day, verdict,
                 " (final: statement deadline passed)" if final else "")
        return Outcome(step.rail, step.day, "run", verdict, final)

    def _note_held(self, step: Step) -> None:
        key = (step.rail, step.day)
        if key not in self._held:  # a late date may hold the next for a day of ticks
            self._held.add(key)
            log.info("reconciliation rail=%s date=%s held: waits for the run of %s (a rail's "
                     "dates run in date order)", step.rail, step.day, step.waits_for)

    def _failed(self, key: tuple[str, date]) -> Attempts:
        before = self._attempts.get(key, Attempts())
        after = self._attempts[key] = Attempts(before.count + 1, self._clock())
        return after

    def _next(self, step: Step, attempts: Attempts) -> datetime:
        due = self._schedules[step.rail].due_at(step.day)
        return self.retry.next_attempt(due, attempts)

    def _forget_old(self) -> None:
        """Drop what is remembered of dates that left the lookback (memory stays bounded)."""
        oldest = self._clock().date() - timedelta(days=self._lookback + 2)
        self._done = {k for k in self._done if k[1] >= oldest}
        self._attempts = {k: v for k, v in self._attempts.items() if k[1] >= oldest}
        self._held = {k for k in self._held if k[1] >= oldest}
