"""The ``payout`` outbox handler: send payments to their rail exactly once, then follow them.

One outbox task per payment (kind ``payout``, destination the rail, ref the payment id) lives
until the payment's outcome is known:

- ``instructed``: first record the submission fact (``sending``, with the exact instruction
  stored) in its own transaction, then submit it with its idempotency key (derived from the
  payment id). A crash between the two leaves ``sending``: the next attempt resends the
  stored instruction, byte for byte the same payout, which the rail never pays twice.
- ``sending``: resend the stored instruction (a dispatcher died before recording an answer).
- ``cancel_requested``: call the rail's cancel and record its answer (cancelled, or the
  payout's real outcome: paid after all opens a discrepancy).
- ``unknown`` (a timeout, reset or 5xx after sending): ask the rail for its status first;
  only if the rail has no record is it sent again.
- ``submitted``: poll the rail's status (callbacks are hints and may be lost); while the
  payout is pending the task is deferred with a growing delay.
- ``paid``: a return may still come (and its callback may be lost), so the rail is asked
  again, sparsely (``return_poll``), until the rail's return window has passed; then the
  task completes.
- ``failed``/``returned``/``cancelled``: nothing to do; the task completes.

Tasks are handled in batches (``batch_size``): one read of the payments, the rail calls (in
parallel, or one pain.001 file for a batch rail), then one transaction that locks the payments,
applies what the rail said through the state machine (a callback may have moved a payment in
the meantime: a stale answer is ignored), and completes or defers every task still leased.
A failure returned for a task goes back to the dispatcher's one retry policy.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.clock import Clock
from gateway.errors import (
    DeliveryError,
    EvidenceMismatchError,
    OutcomeUnknownError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from gateway.evidence import payments as evidence
from gateway.evidence import pensions as pension_evidence
from gateway.observability.logs import bind_ids
from gateway.outbox import records
from gateway.outbox.records import LeaseLost, Task
from gateway.payments import instruction, pensions
from gateway.payments import repository as repo
from gateway.payments.domain import Cause, PaymentState, after_rail_state, transition
from gateway.payments.service import PAYOUT_KIND, Change, PaymentService
from gateway.ports.rail import PayoutInstruction, PayoutResult, PayoutStatus, RailAdapter
from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["PayoutHandler", "PollSchedule"]

log = logging.getLogger(__name__)

P = PaymentState
# States in which the payout's money may be at the rail (or may still come back from it).
_IN_FLIGHT = frozenset({P.sending, P.unknown, P.submitted, P.cancel_requested, P.paid,
                        P.reconciled})


@dataclass(frozen=True, slots=True)
class PollSchedule:
    """When to ask the rail again about a submitted payout (callbacks may be lost)."""

    first: float = 30.0  # seconds after submission
    maximum: float = 3600.0
    return_window: timedelta = timedelta(days=60)  # a paid payout may be returned this long
    return_windows: Mapping[str, timedelta] = field(default_factory=dict)  # per rail
    return_poll: float = 86400.0  # seconds between polls of a paid payout

    def returns_until(self, rail: str, paid_at: datetime) -> datetime:
        """Until when a payout paid at ``paid_at`` may still be returned by ``rail``."""
        return paid_at + self.return_windows.get(rail, self.return_window)

    def return_delay(self, now: datetime, until: datetime) -> timedelta:
        """The wait before asking again about a paid payout (never past the window's end)."""
        left = (until - now).total_seconds()
        return timedelta(seconds=max(min(self.return_poll, left), self.first))

    def delay(self, age: timedelta) -> timedelta:
        """Wait about as long as the payout has been pending (between first and maximum), so
        polls thin out as a payout ages; jittered so a run's payouts do not poll in step."""
        base = min(max(age.total_seconds(), self.first), self.maximum)
        return timedelta(seconds=base * random.uniform(1.0, 1.2))


@dataclass(slots=True)
class _Outcome:
    status: PayoutStatus | None = None  # what the rail said
    cause: Cause = Cause.rail_answer
    error: BaseException | None = None
    sent: bool = False  # the error came from a submit (it may have reached the rail)
    resent_after_unknown: bool = False
    first: bool = False  # the payment's first attempt (it was instructed when claimed)
    done: bool = False  # nothing to do: complete the task


class PayoutHandler:
    kind = PAYOUT_KIND

    def __init__(self, uow: UnitOfWorkFactory, rails: Mapping[str, RailAdapter],
                 service: PaymentService, http: Callable[[], httpx.AsyncClient], clock: Clock,
                 *, batch_size: int = 100, polls: PollSchedule | None = None,
                 status_concurrency: int = 16) -> None:
        self.uow = uow
        self.rails = rails
        self.service = service
        self.http = http
        self.clock = clock
        self.batch_size = batch_size
        self.polls = polls or PollSchedule()
        self._status_gate = asyncio.Semaphore(status_concurrency)

    async def handle(self, tasks: Sequence[Task]) -> list[BaseException | None]:
        if len(tasks) == 1:
            bind_ids(payment_id=tasks[0].ref)  # a batch's lines name their payments themselves
        rail = self.rails.get(tasks[0].destination)
        if rail is None:
            err = PermanentDeliveryError(f"rail {tasks[0].destination!r} is not configured")
            return [err] * len(tasks)
        async with self.uow(read_only=True) as reader:
            rows = await repo.by_ids(reader.conn, [t.ref for t in tasks])
            # Before any rail call: a payment changed beside the hub is neither sent (its
            # stored instruction may be what was changed), asked about, nor cancelled.
            held = await _held(reader.conn, rows.values())
        outcomes: dict[int, _Outcome] = {}
        to_mark: list[Task] = []
        to_send: list[Task] = []
        to_ask: list[Task] = []
        to_cancel: list[Task] = []
        for t in tasks:
            row = rows.get(t.ref)
            if row is None:
                outcomes[t.pk] = _Outcome(error=LookupError(f"no payment {t.ref}"))
            elif t.ref in held:
                outcomes[t.pk] = _Outcome(error=held[t.ref])
            elif row.state == P.instructed:
                to_mark.append(t)
            elif row.state == P.sending:
                to_send.append(t)
            elif row.state in (P.unknown, P.submitted) or self._watching(row, self.clock()):
                to_ask.append(t)
            elif row.state == P.cancel_requested:
                to_cancel.append(t)
            else:
                outcomes[t.pk] = _Outcome(done=True)
        # 0. The submission fact, committed before any rail call.
        if to_mark:
            marked = await self._mark_sending(to_mark, outcomes)
            rows.update(marked)
            to_send += [t for t in to_mark if t.ref in marked]
        first = {t.pk for t in to_mark}
        client = self.http()
        # 1. Ask before sending again: an unknown outcome or a pending payout; cancel those
        # stopped while the rail may hold them.
        asked = await asyncio.gather(
            *(self._ask(rail, client, rows[t.ref].idempotency_key) for t in to_ask),
            *(self._cancel(rail, client, rows[t.ref].idempotency_key) for t in to_cancel))
        for t, answer in zip(to_cancel, asked[len(to_ask):], strict=True):
            outcomes[t.pk] = (_Outcome(error=answer) if isinstance(answer, BaseException)
                              else _Outcome(status=answer, cause=Cause.rail_cancel))
        for t, answer in zip(to_ask, asked[:len(to_ask)], strict=True):
            state = rows[t.ref].state
            if isinstance(answer, BaseException):
                outcomes[t.pk] = _Outcome(error=answer)
            elif answer is not None:
                outcomes[t.pk] = _Outcome(status=answer, cause=Cause.status_poll)
            elif state == P.unknown:
                to_send.append(t)  # the rail never got it: sending again is safe
            else:
                outcomes[t.pk] = _Outcome(error=OutcomeUnknownError(
                    f"rail {rail.name} has no record of submitted payment {t.ref}"))
        # 2. Send: always the stored instruction, exactly as first sent.
        if to_send:
            payouts = [instruction.of(rows[t.ref]) for t in to_send]
            results = await _submit(rail, client, payouts)
            for t, res in zip(to_send, results, strict=True):
                again = rows[t.ref].state == P.unknown
                if res.error is not None:
                    outcomes[t.pk] = _Outcome(error=res.error, sent=True,
                                              resent_after_unknown=again,
                                              first=t.pk in first)
                else:
                    outcomes[t.pk] = _Outcome(status=res.status, resent_after_unknown=again)
        # 3. Record, in one transaction.
        return await self._record(tasks, outcomes)

    def _watching(self, row: RowMapping, now: datetime) -> bool:
        """Is this paid payout still inside its rail's return window?"""
        return (row.state in (P.paid, P.reconciled) and row.paid_at is not None
                and now < self.polls.returns_until(row.rail, row.paid_at))

    async def _mark_sending(self, tasks: Sequence[Task],
                            outcomes: dict[int, _Outcome]) -> dict[str, RowMapping]:
        """Commit ``sending`` (with the stored instruction) for the tasks' payments still
        instructed and still leased; return their rows. The others get their outcome here."""
        now = self.clock()
        async with self.uow() as uow:
            owned = await records.leased_by(uow.conn, tasks)
            rows = await repo.by_ids(uow.conn, [t.ref for t in tasks], lock=True)
            held = await _held(uow.conn, rows.values())
            ready = [rows[t.ref] for t in tasks if t.pk in owned and t.ref in rows
                     and rows[t.ref].state == P.instructed and t.ref not in held]
            dead = await pensions.after_death(uow.conn, ready)
            for payment_id, why in dead.items():
                rows[payment_id] = await self.service.stop(uow.conn, payment_id,
                                                           Cause.death_notified, why, now)
            ready = [r for r in ready if r.payment_id not in dead]
            await self.service.mark_sending(uow.conn, ready, now)
            # Read back under the lock: what is sent is what this transaction marked.
            sending = await repo.by_ids(uow.conn, [r.payment_id for r in ready])
            await uow.commit()
        for t in tasks:
            if t.pk not in owned:
                outcomes[t.pk] = _Outcome(error=LeaseLost(f"outbox task {t.pk} was taken over"))
            elif t.ref in held:
                outcomes[t.pk] = _Outcome(error=held[t.ref])
            elif t.ref not in rows or rows[t.ref].state != P.instructed:
                # Stopped meanwhile (cancelled): nothing to send. Anything else is left for
                # the next attempt, which reads it afresh.
                cancelled = t.ref in rows and rows[t.ref].state == P.cancelled
                outcomes[t.pk] = _Outcome(done=True) if cancelled else _Outcome(
                    error=OutcomeUnknownError(f"payment {t.ref} changed before its submit"))
        return sending

    async def _cancel(self, rail: RailAdapter, client: httpx.AsyncClient,
                      key: str) -> PayoutStatus | BaseException:
        async with self._status_gate:
            try:
                return await rail.cancel(client, key)
            except Exception as exc:  # returned per task, so one failure hides no answer
                return exc

    async def _ask(self, rail: RailAdapter, client: httpx.AsyncClient,
                   key: str) -> PayoutStatus | None | BaseException:
        async with self._status_gate:
            try:
                return await rail.status(client, key)
            except Exception as exc:  # returned per task, so one failure hides no answer
                return exc

    async def _record(self, tasks: Sequence[Task],
                      outcomes: dict[int, _Outcome]) -> list[BaseException | None]:
        now = self.clock()
        results: dict[int, BaseException | None] = {}
        async with self.uow() as uow:
            conn = uow.conn
            # Outbox rows first, then payments: the lock order of every payout transaction.
            owned = await records.leased_by(conn, tasks)
            rows = await repo.by_ids(conn, [t.ref for t in tasks], lock=True)
            held = await _held(conn, rows.values())
            to_complete: list[Task] = []
            defer: list[tuple[Task, timedelta]] = []
            changes: list[Change] = []  # the rail's answers, written in one statement each
            for t in tasks:
                o = outcomes[t.pk]
                row = rows.get(t.ref)
                err: BaseException | None = o.error
                state = P(row.state) if row is not None else None
                if t.ref in held:
                    err = held[t.ref]  # the rail's answer waits: asked again once restored
                elif row is not None and o.status is not None and o.status.idempotency_key != \
                        row.idempotency_key:
                    err = OutcomeUnknownError(f"rail answered about {o.status.idempotency_key}")
                elif row is not None and not o.done:
                    err, state = await self._apply(conn, row, o, now, changes)
                if t.pk not in owned:
                    results[t.pk] = LeaseLost(f"outbox task {t.pk} was taken over")
                    continue
                if isinstance(err, DeliveryError) and state in _IN_FLIGHT:
                    err.in_flight = True  # never given up for age: its money may be out
                results[t.pk] = err
                if err is not None:
                    continue  # the dispatcher reschedules or dead-letters it
                if row is not None and state in (P.submitted, P.unknown):
                    defer.append((t, self.polls.delay(now - row.created_at)))
                elif row is not None and state == P.cancel_requested:
                    defer.append((t, timedelta(seconds=self.polls.first)))
                elif row is not None and state in (P.paid, P.reconciled) and now < (
                        until := self.polls.returns_until(row.rail, _paid_at(row, o, now))):
                    defer.append((t, self.polls.return_delay(now, until)))
                elif row is not None and state in (P.instructed, P.sending):
                    # The task is the payment's only way to the rail: it completes only once
                    # the payment has left ``instructed``, never on an answer that moved
                    # nothing (the payment would wait for a callback that may be lost).
                    results[t.pk] = OutcomeUnknownError(
                        f"payment {t.ref} is still {state} after the rail's answer")
                else:
                    to_complete.append(t)
            await self.service.apply(conn, changes, now)
            # Only tasks in ``owned`` are here, and their rows are locked: none can be lost.
            lost = await records.complete_many(conn, to_complete, now, owned=owned)
            # A pending payout is not a failure: attempts restart, so a later error's
            # backoff is not inflated by the polls before it.
            lost += await records.defer_many(conn, defer, now, owned=owned)
            for t in lost:  # pragma: no cover - the locks above make this impossible
                results[t.pk] = LeaseLost(f"outbox task {t.pk} was taken over")
            await uow.commit()
        return [results[t.pk] for t in tasks]

    async def _apply(self, conn: AsyncConnection, r: RowMapping, o: _Outcome,
                     now: datetime, changes: list[Change]) -> tuple[BaseException | None,
                                                                  PaymentState]:
        """Apply one outcome to the (locked, current) payment; return the task's error and
        the payment's state after it. The rail's answer is appended to ``changes`` (written
        for the whole batch at once by the caller, in the same transaction); the rare other
        transitions are written here."""
        state = P(r.state)
        if o.resent_after_unknown and state == P.unknown:
            await self.service.note(conn, r, Cause.rail_no_record, "the rail had no record "
                                    "after an unknown outcome; the stored instruction was "
                                    "sent again", now)
        if o.status is not None:
            s = o.status
            detail = f"rail says {s.state.value}" + (f" ({s.reason})" if s.reason else "")
            tr = after_rail_state(state, s.state, o.cause, detail)
            if tr is not None:
                changes.append(Change(r, tr, s.rail_reference, s.reason, s.at))
                state = tr.to_state
            return None, state
        err = o.error
        if isinstance(err, TransientDeliveryError) and o.sent and o.first and \
                state == P.sending:
            # Nothing earlier was ever sent and this request certainly did not reach the rail
            # (refused before acceptance): the payout is provably not at the rail.
            tr = transition(state, P.instructed, Cause.rail_not_taken, _text(err))
            assert tr is not None
            await self.service.apply(conn, [Change(r, tr)], now)
            state = P.instructed
        elif isinstance(err, OutcomeUnknownError) and o.sent and state == P.sending:
            tr = transition(state, P.unknown, Cause.rail_unknown, _text(err))
            assert tr is not None
            await self.service.apply(conn, [Change(r, tr)], now)
            state = P.unknown
        elif isinstance(err, PermanentDeliveryError) and o.sent and state == P.sending:
            # Left sending (a refusal such as "key reused" can mean the rail holds a payout
            # under this key): the task is dead-lettered for an operator, whose retry resends
            # the same instruction and whose cancel asks the rail.
            await self.service.note(conn, r, Cause.rail_refused, _text(err), now)
        return err, state


def _paid_at(row: RowMapping, o: _Outcome, now: datetime) -> datetime:
    """When the payout was paid: as recorded, or (paid in this batch) as the rail said."""
    if row.state in (P.paid, P.reconciled) and row.paid_at is not None:
        return row.paid_at  # type: ignore[no-any-return]
    return o.status.at if o.status is not None and o.status.at is not None else now


def _text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"[:1000]


async def _held(conn: AsyncConnection,
                rows: Iterable[RowMapping]) -> dict[str, EvidenceMismatchError]:
    """The payments among ``rows`` changed beside the hub, or created from a pension schedule
    that was, each with its error: the others of the batch go on, these are neither sent nor
    written over."""
    rows = list(rows)
    by_pk = {r.pk: r.payment_id for r in rows}
    found = await evidence.mismatched(conn, by_pk)
    held = {by_pk[pk]: EvidenceMismatchError(f"{why}; {evidence.HELD}")
            for pk, why in found.items()}
    schedules = await pension_evidence.held_schedules(
        conn, {r.pension_ref for r in rows if r.pension_ref is not None})
    for r in rows:
        if r.payment_id not in held and r.pension_ref in schedules:
            held[r.payment_id] = EvidenceMismatchError(
                f"payment {r.payment_id} is held with its schedule: {schedules[r.pension_ref]}; "
                f"{pension_evidence.HELD}")
    return held


async def _submit(rail: RailAdapter, client: httpx.AsyncClient,
                  payouts: list[PayoutInstruction]) -> list[PayoutResult]:
    """Submit, getting one result per payout, whatever the adapter raised."""
    try:
        return list(await rail.submit_each(client, payouts))
    except DeliveryError as exc:
        return [PayoutResult(p.idempotency_key, error=exc) for p in payouts]
    except Exception as exc:  # an adapter bug after sending: treat as possibly sent
        unknown = OutcomeUnknownError(f"rail {rail.name} submit failed: {exc!r}")
        return [PayoutResult(p.idempotency_key, error=unknown) for p in payouts]

