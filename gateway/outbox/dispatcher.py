"""The dispatcher: claim due outbox work, hand it to its handler, apply the retry policy.

A handler does its business change and ``records.complete`` in one unit of work, and returns
per task either ``None`` (done) or the exception that stopped it. The dispatcher turns
exceptions into a reschedule or a dead letter through the one retry policy, and feeds the
circuit breaker of the task's destination. Handlers never retry on their own.

Only a counterparty can be down, so only its failures feed a breaker: work the hub does itself
(``INTERNAL_DESTINATIONS``) has no breaker, since opening one would stop every partner's
messages because of one message; and a deterministic failure (``retry.is_deterministic``) is
the task's fault, not the destination's. It is dead-lettered at once with an error log line
(the alert), its stored error sanitised by ``retry.describe``.

Stopping (SIGTERM): once ``stop`` is set no new batch is claimed; the batch at hand gets
``stop_grace`` seconds to finish, then its unfinished work is cancelled, and every task of it
not done is released (``records.release``): due at once for another dispatcher, not after its
lease runs out. Work that never started is released with its attempt uncounted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import timedelta

from gateway.clock import Clock, pause, utcnow
from gateway.observability.logs import bind_ids
from gateway.observability.metrics import Observer
from gateway.observability.tracing import NO_TRACING, Tracing
from gateway.outbox.breaker import CircuitBreakers, is_outage
from gateway.outbox.claiming import claim
from gateway.outbox.handlers import Handler
from gateway.outbox.overrides import BreakerOverrides
from gateway.outbox.records import (
    LeaseLost,
    Task,
    dead_letter,
    release,
    renew_leases,
    reschedule,
)
from gateway.outbox.retry import RetryPolicy, describe
from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["INTERNAL_DESTINATIONS", "Dispatcher"]

log = logging.getLogger(__name__)

# Destinations that are the hub itself (inbound processing): no counterparty, no breaker.
INTERNAL_DESTINATIONS = frozenset({"hub"})


def _owner_id() -> str:
    return f"{socket.gethostname()[:20]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Dispatcher:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        handlers: Mapping[str, Handler],
        *,
        policy: RetryPolicy | None = None,
        breakers: CircuitBreakers | None = None,
        lease: timedelta = timedelta(seconds=60),
        batch: int = 200,
        concurrency: int = 32,
        idle_sleep: float = 0.05,
        idle_max: float = 0.5,
        clock: Clock = utcnow,
        kinds: Sequence[str] | None = None,
        heartbeat: float | None = None,
        observer: Observer | None = None,
        stop_grace: float = 10.0,
        overrides: BreakerOverrides | None = None,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self.uow = uow
        self.handlers = dict(handlers)
        self.policy = policy or RetryPolicy()
        self.breakers = breakers or CircuitBreakers()
        # Operators' manual breaker states and suspensions, shared by every process.
        self.overrides = overrides
        self.lease = lease
        # Seconds between lease renewals while a batch runs (default: a third of the lease),
        # so a slow batch is never taken over while it is still working.
        self.heartbeat = heartbeat if heartbeat is not None else lease.total_seconds() / 3
        self.batch = batch
        # An empty claim costs a transaction; polling every ``idle_sleep`` while idle cost an
        # idle dispatcher a fifth of a core. After each empty claim the pause doubles, up to
        # ``idle_max`` (the longest a new task waits when nothing has come for a while); any
        # claimed work resets it, so a busy dispatcher never waits.
        self.idle_sleep = idle_sleep
        self.idle_max = max(idle_max, idle_sleep)
        self.clock = clock
        self.kinds = list(kinds) if kinds else list(self.handlers)
        self.owner = _owner_id()
        self.observer = observer or Observer()
        self.stop_grace = stop_grace
        self.tracing = tracing
        self._sem = asyncio.Semaphore(concurrency)

    async def run_once(self, stop: asyncio.Event | None = None) -> int:
        """Claim one batch and work it off; return how many tasks were claimed. If ``stop`` is
        set meanwhile, the batch gets ``stop_grace`` seconds, then the rest is released."""
        skip = (await self.overrides.skip(self.breakers) if self.overrides is not None
                else self.breakers.open_destinations())
        self.observer.circuits(skip)
        tasks = await claim(
            self.uow, owner=self.owner, now=self.clock(), lease=self.lease,
            limit=self.batch, kinds=self.kinds, skip_destinations=skip,
        )
        if not tasks:
            return 0
        groups: dict[tuple[str, str], list[Task]] = defaultdict(list)
        for t in tasks:
            groups[(t.kind, t.destination)].append(t)
        jobs = []
        for (kind, _dest), group in groups.items():
            handler = self.handlers[kind]
            size = max(1, handler.batch_size)
            jobs += [self._run(handler, chunk, stop) for chunk in _chunks(group, size)]
        if stop is None:
            await asyncio.gather(*jobs)
            return len(tasks)
        running = [asyncio.ensure_future(j) for j in jobs]
        stopping = asyncio.ensure_future(stop.wait())
        pending = set(running)
        try:
            while pending and not stop.is_set():
                done, _ = await asyncio.wait({*pending, stopping},
                                             return_when=asyncio.FIRST_COMPLETED)
                pending -= done
            if pending:  # stopped mid-batch: a grace to finish, then cancel and release
                log.info("dispatcher %s stopping: %.1f s for %d chunk(s) at hand", self.owner,
                         self.stop_grace, len(pending))
                _, pending = await asyncio.wait(pending, timeout=self.stop_grace)
            for job in pending:
                job.cancel()  # each releases its tasks as it unwinds
            if pending:
                await asyncio.wait(pending)  # every one of them, not just the first
        finally:
            stopping.cancel()
            for job in running:  # only if this call itself was cancelled: do not orphan them
                if not job.done():
                    job.cancel()
        for job in running:
            if not job.cancelled():
                job.result()  # _run lets nothing but cancellation out; surface anything else
        return len(tasks)

    async def _run(self, handler: Handler, tasks: list[Task],
                   stop: asyncio.Event | None = None) -> None:
        started = False
        try:
            async with self._sem:
                if stop is not None and stop.is_set():
                    await self._release(tasks, attempted=False)
                    return
                started = True
                await self._handle(handler, tasks)
        except asyncio.CancelledError:
            await self._release(tasks, attempted=started)
            raise

    async def _handle(self, handler: Handler, tasks: list[Task]) -> None:
        first = tasks[0]
        bind_ids(kind=first.kind, destination=first.destination,
                 **({"outbox_pk": first.pk, "attempt": first.attempts} if len(tasks) == 1
                    else {}))
        # One span per chunk, with the ids its log records carry; its children are the
        # handler's statements and calls.
        attributes: dict[str, str | int] = {
            "px.outbox.kind": first.kind, "px.outbox.destination": first.destination,
            "px.outbox.tasks": len(tasks)}
        if len(tasks) == 1:
            attributes |= {"px.outbox.pk": first.pk, "px.outbox.attempt": first.attempts}
        with self.tracing.span(f"outbox {first.kind}", attributes) as span:
            done = asyncio.Event()
            beat = asyncio.create_task(self._keep_leases(tasks, done))
            try:
                results: Sequence[BaseException | None] = await handler.handle(tasks)
            except Exception as exc:  # a handler bug must not lose the batch
                log.exception("handler %s failed on %d task(s)", handler.kind, len(tasks))
                results = [exc] * len(tasks)
            finally:
                done.set()
                with contextlib.suppress(asyncio.CancelledError):
                    await beat
            failures = [e for e in results if e is not None]
            if failures:
                span.attribute("px.outbox.failed", len(failures))
                span.failed(type(failures[0]).__name__)
        now = self.clock()
        for task, error in zip(tasks, results, strict=True):
            if error is None:
                self.breakers.success(task.destination)
                self.observer.delivered(task.destination, task.kind,
                                        (now - task.created_at).total_seconds())
                continue
            await self._failed(task, error)

    async def _release(self, tasks: list[Task], *, attempted: bool) -> None:
        try:
            async with self.uow() as uow:
                n = await release(uow.conn, tasks, self.clock(), attempted=attempted)
                await uow.commit()
        except Exception:  # the database is away: the leases run out instead
            log.exception("dispatcher %s: releasing %d task(s) failed", self.owner, len(tasks))
            return
        log.info("dispatcher %s released %d task(s) (%s)", self.owner, n,
                 "cut short" if attempted else "not started")

    async def _keep_leases(self, tasks: list[Task], done: asyncio.Event) -> None:
        """Renew the batch's leases every ``heartbeat`` seconds until ``done`` is set.

        Stopped between renewals, never cancelled inside one: a cancel that lands in a
        database call can leave the driver's connection waiting for ever (seen with
        aiosqlite: the batch's ``run_once`` never returned)."""
        while True:
            try:
                await asyncio.wait_for(done.wait(), self.heartbeat)
                return
            except TimeoutError:
                pass
            try:
                async with self.uow() as uow:
                    await renew_leases(uow.conn, tasks, self.clock(), self.lease)
                    await uow.commit()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database blinked: the next beat tries again
                log.exception("dispatcher %s: lease renewal failed", self.owner)

    async def _failed(self, task: Task, error: BaseException) -> None:
        if isinstance(error, LeaseLost):
            log.warning("outbox %s: lease lost, another dispatcher owns it", task.pk)
            return
        now = self.clock()
        decision = self.policy.decide(error, task.attempts, now - task.created_at)
        # Only an outage (transport failure, 5xx) says a destination is down: never a business
        # refusal or a deterministic failure, and internal destinations have no breaker.
        if is_outage(error) and task.destination not in INTERNAL_DESTINATIONS:
            self.breakers.failure(task.destination)
        text = describe(error)
        try:
            async with self.uow() as uow:
                if decision.retry:
                    await reschedule(uow.conn, task, now, decision.delay, text)
                else:
                    await dead_letter(uow.conn, task, now, f"{decision.reason}: {text}")
                await uow.commit()
        except LeaseLost:
            return
        if decision.retry:
            self.observer.retried(task.destination, task.kind)
        if decision.alert:
            log.error("ALERT outbox %s (%s to %s): %s; still trying: %s", task.pk, task.kind,
                      task.destination, decision.reason, text)
        if not decision.retry:
            log.error("outbox %s (%s to %s, key %s) dead-lettered after attempt %d: %s",
                      task.pk, task.kind, task.destination, task.ordering_key, task.attempts,
                      f"{decision.reason}: {text}")
            return
        log.info("outbox %s (%s to %s) attempt %d failed: %s; %s", task.pk, task.kind,
                 task.destination, task.attempts, text,
                 f"retry in {decision.delay.total_seconds():.1f}s" if decision.retry
                 else "dead-lettered")

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; when there is nothing to do, pause (``idle_sleep``
        doubling up to ``idle_max`` while nothing comes)."""
        idle = self.idle_sleep
        while not stop.is_set():
            try:
                n = await self.run_once(stop)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database went away for a moment: try again shortly
                log.exception("dispatcher %s: claim failed", self.owner)
                n = 0
                await asyncio.sleep(1.0)
            if n:
                idle = self.idle_sleep
                continue
            await pause(stop, idle)
            idle = min(idle * 2, self.idle_max)


def _chunks(tasks: list[Task], size: int) -> list[list[Task]]:
    # Claiming yields at most one task per ordering key (later ones wait for the earlier to
    # finish), so any split of a claimed batch keeps the order per key.
    return [tasks[i:i + size] for i in range(0, len(tasks), size)]
