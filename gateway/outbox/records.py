"""Outbox records: enqueue with the business change; finish only while holding the lease.

This module owns every write to the outbox table (``gateway.outbox.claiming`` only chooses
what to lease); nothing else inserts, updates or deletes outbox rows. Claiming orders a key's
tasks by pk; on PostgreSQL a pk is drawn at insert, not at commit, so every enqueue of a task
with an ordering key first takes the key's advisory lock (``storage.commit_order``): writers of
one case take turns, and a task can never be claimed ahead of an earlier, still uncommitted
task of its case. Each write to a leased
task checks the lease (state ``leased`` and the owner), so a dispatcher that lost its lease
can never finish another's attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Exists,
    Insert,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.storage.bulk import one_of
from gateway.storage.commit_order import lock_key, lock_key_clause
from gateway.storage.tables import outbox

__all__ = [
    "BlockedCase", "LeaseLost", "Task", "blocked_cases", "complete", "complete_many",
    "dead_by_pks", "dead_letter", "dead_letters", "dead_page", "defer_many", "depth",
    "drop_pending", "enqueue", "enqueue_from", "enqueue_statement", "expedite",
    "has_dead_letter", "leased_by", "release", "renew_leases", "reschedule", "revive_dead",
    "skip_dead", "take_leases", "tasks_of",
]

# States: pending -> leased -> done | pending (rescheduled) | dead (dead letter, last error kept)
UNFINISHED = ("pending", "leased", "dead")


@dataclass(frozen=True, slots=True)
class Task:
    """One claimed unit of outbox work."""

    pk: int
    kind: str
    destination: str
    ordering_key: str | None
    ref: str
    attempts: int  # including the current one
    created_at: datetime
    lease_owner: str


class LeaseLost(Exception):
    """The task's lease expired and another dispatcher owns it now; this attempt must not
    commit anything."""


async def enqueue(
    conn: AsyncConnection, *, kind: str, destination: str, ref: str, now: datetime,
    ordering_key: str | None = None, delay: timedelta = timedelta(0),
) -> int:
    """Add work to the outbox inside the caller's transaction; return its pk."""
    await lock_key(conn, ordering_key)
    result = await conn.execute(
        insert(outbox).values(
            kind=kind, destination=destination, ordering_key=ordering_key, ref=ref,
            state="pending", attempts=0, next_attempt_at=now + delay, created_at=now,
            updated_at=now,
        ).returning(outbox.c.pk)
    )
    return int(result.scalar_one())


_TASK_PARAMS = ["kind", "destination", "ordering_key", "state", "attempts", "next_attempt_at",
                "created_at", "updated_at"]


def _params(names: list[str]) -> dict[str, BindParameter[Any]]:
    return {n: bindparam(n, type_=outbox.c[n].type) for n in names}


def enqueue_statement() -> Insert:
    """A prebuilt INSERT of one task, its values as bind parameters named like the columns
    (kind, destination, ordering_key, state, attempts, next_attempt_at, created_at,
    updated_at, ref): for hot paths, where building a statement costs more than running it."""
    return insert(outbox).values(_params([*_TASK_PARAMS, "ref"]))


def enqueue_from(ref: ColumnElement[Any]) -> Insert:
    """As ``enqueue_statement``, but the ref is ``ref`` (e.g. a CTE's inserted pk) and the row
    is inserted only if ``ref`` yields a row; returns the task's pk. PostgreSQL only: the
    ordering key's lock is taken (in the row filter) before the task's pk is drawn."""
    params = _params(_TASK_PARAMS)
    return (insert(outbox)
            .from_select([*_TASK_PARAMS, "ref"], select(*params.values(), ref)
                         .where(lock_key_clause(params["ordering_key"])))
            .returning(outbox.c.pk))


async def take_leases(conn: AsyncConnection, pks: Sequence[int], *, owner: str, now: datetime,
                      lease: timedelta) -> list[Task]:
    """Lease the (claimable, locked) tasks ``pks`` to ``owner``; return them, oldest first."""
    rows = (await conn.execute(
        update(outbox)
        .where(one_of(conn, outbox.c.pk, pks))
        .values(state="leased", lease_owner=owner, lease_expires_at=now + lease,
                attempts=outbox.c.attempts + 1, updated_at=now)
        .returning(outbox.c.pk, outbox.c.kind, outbox.c.destination,
                   outbox.c.ordering_key, outbox.c.ref, outbox.c.attempts,
                   outbox.c.created_at)
    )).all()
    tasks = [Task(r.pk, r.kind, r.destination, r.ordering_key, r.ref, r.attempts,
                  r.created_at, owner) for r in rows]
    tasks.sort(key=lambda t: t.pk)
    return tasks


async def renew_leases(conn: AsyncConnection, tasks: Sequence[Task], now: datetime,
                       lease: timedelta) -> int:
    """Extend the leases of ``tasks`` still leased by their owner (a heartbeat while their
    batch runs); return how many were extended."""
    n = 0
    for owner in sorted({t.lease_owner for t in tasks}):
        result = await conn.execute(
            update(outbox).where(one_of(conn, outbox.c.pk,
                                        [t.pk for t in tasks if t.lease_owner == owner]),
                                 *_leased_to(owner))
            .values(lease_expires_at=now + lease))
        n += result.rowcount or 0
    return n


async def release(conn: AsyncConnection, tasks: Sequence[Task], now: datetime, *,
                  attempted: bool) -> int:
    """Give leased tasks back, due at once (their dispatcher is stopping), each only while still
    leased by its owner; return how many. ``attempted`` False: the attempt never started and is
    not counted; True: it was cut short and counts, as if its dispatcher had died, only without
    the wait for the lease to run out."""
    n = 0
    for owner in sorted({t.lease_owner for t in tasks}):
        result = await conn.execute(
            update(outbox).where(one_of(conn, outbox.c.pk,
                                        [t.pk for t in tasks if t.lease_owner == owner]),
                                 *_leased_to(owner))
            .values(state="pending", lease_owner=None, lease_expires_at=None,
                    next_attempt_at=now, updated_at=now,
                    attempts=outbox.c.attempts - (0 if attempted else 1)))
        n += result.rowcount or 0
    return n


async def _finish(conn: AsyncConnection, task: Task, now: datetime, **values: object) -> None:
    result = await conn.execute(
        update(outbox)
        .where(outbox.c.pk == task.pk, outbox.c.state == "leased",
               outbox.c.lease_owner == task.lease_owner)
        .values(updated_at=now, **values)
    )
    if result.rowcount != 1:
        raise LeaseLost(f"outbox task {task.pk} is no longer leased by {task.lease_owner}")


async def complete(conn: AsyncConnection, task: Task, now: datetime) -> None:
    """Mark the task done in the same transaction as its business effect.

    Raises:
        LeaseLost: the lease was taken over; the caller must roll back.
    """
    await _finish(conn, task, now, state="done", lease_owner=None, lease_expires_at=None,
                  last_error=None)


async def reschedule(conn: AsyncConnection, task: Task, now: datetime, delay: timedelta,
                     error: str) -> None:
    """Give the task back for a later attempt, keeping the error."""
    await _finish(conn, task, now, state="pending", lease_owner=None, lease_expires_at=None,
                  next_attempt_at=now + delay, last_error=error[:2000])


async def dead_letter(conn: AsyncConnection, task: Task, now: datetime, error: str) -> None:
    """Stop trying; keep the last error for the operators."""
    await _finish(conn, task, now, state="dead", lease_owner=None, lease_expires_at=None,
                  last_error=error[:2000])


async def leased_by(conn: AsyncConnection, tasks: Sequence[Task]) -> set[int]:
    """Lock the rows of ``tasks`` still leased by their owner (pk order); return their pks."""
    if not tasks:
        return set()
    owners = {t.lease_owner for t in tasks}
    return set((await conn.execute(
        select(outbox.c.pk).where(
            one_of(conn, outbox.c.pk, [t.pk for t in tasks]), outbox.c.state == "leased",
            outbox.c.lease_owner.in_(sorted(owners)),
        ).order_by(outbox.c.pk).with_for_update()
    )).scalars())


async def complete_many(conn: AsyncConnection, tasks: Sequence[Task], now: datetime, *,
                        owned: set[int] | None = None) -> list[Task]:
    """Mark ``tasks`` done in one statement, each only while still leased by its owner.

    Args:
        owned: the pks ``leased_by`` returned earlier in this transaction (their rows are
            locked, so the check need not be read again).

    Returns:
        The tasks whose lease was lost (not completed); the caller decides what that means.
    """
    if not tasks:
        return []
    owned = await leased_by(conn, tasks) if owned is None else owned
    kept = [t for t in tasks if t.pk in owned]
    for owner in sorted({t.lease_owner for t in kept}):  # one owner per dispatcher batch
        await conn.execute(
            update(outbox).where(one_of(conn, outbox.c.pk,
                                        [t.pk for t in kept if t.lease_owner == owner]),
                                 *_leased_to(owner))
            .values(state="done", lease_owner=None, lease_expires_at=None, last_error=None,
                    updated_at=now))
    return [t for t in tasks if t.pk not in owned]


async def defer_many(conn: AsyncConnection, deferrals: Sequence[tuple[Task, timedelta]],
                     now: datetime, *, owned: set[int] | None = None) -> list[Task]:
    """Give leased tasks back for a later attempt with their attempts reset (work that is
    waiting, not failing), in one executemany; only tasks still leased by their owner.

    Args:
        owned: as for ``complete_many``.

    Returns:
        The tasks whose lease was lost (not deferred).
    """
    if not deferrals:
        return []
    tasks = [t for t, _ in deferrals]
    owned = await leased_by(conn, tasks) if owned is None else owned
    rows = [{"b_pk": t.pk, "b_owner": t.lease_owner, "b_next": now + delay}
            for t, delay in deferrals if t.pk in owned]
    if rows:
        # One executemany (pipelined by the driver), not a round trip per task.
        await conn.execute(
            update(outbox).where(outbox.c.pk == bindparam("b_pk"), outbox.c.state == "leased",
                                 outbox.c.lease_owner == bindparam("b_owner"))
            .values(state="pending", lease_owner=None, lease_expires_at=None, last_error=None,
                    attempts=0, next_attempt_at=bindparam("b_next"), updated_at=now),
            rows)
    return [t for t in tasks if t.pk not in owned]


def _leased_to(owner: str) -> tuple[ColumnElement[bool], ...]:
    return (outbox.c.state == "leased", outbox.c.lease_owner == owner)


async def drop_pending(conn: AsyncConnection, *, kind: str, ref: str, now: datetime,
                       reason: str) -> int:
    """Finish the pending or dead tasks of ``kind`` for ``ref`` unattempted (``reason`` kept
    as their last error); a leased task is never touched. Return how many."""
    result = await conn.execute(update(outbox).where(
        outbox.c.kind == kind, outbox.c.ref == ref, outbox.c.state.in_(["pending", "dead"]))
        .values(state="done", last_error=reason, updated_at=now))
    return result.rowcount or 0


async def expedite(conn: AsyncConnection, *, kind: str, ref: str, now: datetime) -> int:
    """Make the waiting (pending or dead) tasks of ``kind`` for ``ref`` due now, with a fresh
    attempt and age budget (an operator's request that needs them, e.g. a cancel to send); a
    leased task is never touched (its handler reads the request when it records). Return how
    many."""
    result = await conn.execute(update(outbox).where(
        outbox.c.kind == kind, outbox.c.ref == ref, outbox.c.state.in_(["pending", "dead"]))
        .values(state="pending", next_attempt_at=now, attempts=0, created_at=now,
                updated_at=now))
    return result.rowcount or 0


def has_dead_letter(kind: str, ref: ColumnElement[Any]) -> Exists:
    """An EXISTS clause: a dead-lettered task of ``kind`` has the ref ``ref`` (for queries
    that correlate outbox work with their own rows)."""
    return select(outbox.c.pk).where(
        outbox.c.kind == kind, outbox.c.state == "dead", outbox.c.ref == ref).exists()


def _waiting_behind() -> ColumnElement[int]:
    # Claiming keeps a task back while an earlier task of its key is unfinished, dead ones
    # included: these are the tasks a dead letter holds back.
    later = outbox.alias("later")
    return (select(func.count()).select_from(later)
            .where(later.c.ordering_key == outbox.c.ordering_key, later.c.pk > outbox.c.pk,
                   later.c.state.in_(["pending", "leased"]))
            .scalar_subquery())


@dataclass(frozen=True, slots=True)
class BlockedCase:
    """A dead letter that holds back the later work of its ordering key (its case)."""

    task_pk: int
    kind: str
    ordering_key: str
    waiting: int  # unfinished tasks of the key behind it


async def blocked_cases(conn: AsyncConnection, *, limit: int = 100) -> list[BlockedCase]:
    """Return the dead letters that block their case's later work, oldest first."""
    waiting = _waiting_behind().label("waiting")
    rows = (await conn.execute(
        select(outbox.c.pk, outbox.c.kind, outbox.c.ordering_key, waiting)
        .where(outbox.c.state == "dead", outbox.c.ordering_key.is_not(None), waiting > 0)
        .order_by(outbox.c.pk).limit(limit))).all()
    return [BlockedCase(r.pk, r.kind, r.ordering_key, r.waiting) for r in rows]


async def dead_letters(conn: AsyncConnection, *, kind: str | None = None,
                       limit: int = 100) -> list[RowMapping]:
    """Return dead-lettered tasks (optionally of one kind), oldest first, each with
    ``blocking``: how many later tasks of its ordering key it holds back."""
    q = (select(outbox, _waiting_behind().label("blocking"))
         .where(outbox.c.state == "dead").order_by(outbox.c.pk).limit(limit))
    if kind:
        q = q.where(outbox.c.kind == kind)
    return list((await conn.execute(q)).mappings())


async def revive_dead(conn: AsyncConnection, pk: int, now: datetime) -> RowMapping | None:
    """Make a dead letter pending again now; return its row, or None if ``pk`` is not dead."""
    # A fresh age budget: the retry policy's maximum age counts from the operator's retry.
    result = await conn.execute(
        update(outbox).where(outbox.c.pk == pk, outbox.c.state == "dead")
        .values(state="pending", next_attempt_at=now, created_at=now, updated_at=now)
        .returning(outbox))
    row: RowMapping | None = result.mappings().first()
    return row


async def skip_dead(conn: AsyncConnection, pk: int, now: datetime,
                    reason: str) -> RowMapping | None:
    """Finish a dead letter without doing it (an operator's skip, ``reason`` kept as its last
    error), so the later work of its case runs; return its row, or None if ``pk`` is not dead."""
    result = await conn.execute(
        update(outbox).where(outbox.c.pk == pk, outbox.c.state == "dead")
        .values(state="done", last_error=reason[:2000], updated_at=now)
        .returning(outbox))
    row: RowMapping | None = result.mappings().first()
    return row


async def dead_page(conn: AsyncConnection, *, kind: str | None = None,
                    destination: str | None = None, before: int | None = None,
                    limit: int = 100) -> list[RowMapping]:
    """Return dead letters newest first below pk ``before``, each with ``blocking``."""
    q = (select(outbox, _waiting_behind().label("blocking"))
         .where(outbox.c.state == "dead").order_by(outbox.c.pk.desc()).limit(limit))
    if kind:
        q = q.where(outbox.c.kind == kind)
    if destination:
        q = q.where(outbox.c.destination == destination)
    if before is not None:
        q = q.where(outbox.c.pk < before)
    return list((await conn.execute(q)).mappings())


async def dead_by_pks(conn: AsyncConnection, pks: Sequence[int]) -> list[RowMapping]:
    """Return the dead letters among ``pks`` (pk order), each with ``blocking``."""
    q = (select(outbox, _waiting_behind().label("blocking"))
         .where(outbox.c.state == "dead", outbox.c.pk.in_(list(pks))).order_by(outbox.c.pk))
    return list((await conn.execute(q)).mappings())


async def depth(conn: AsyncConnection) -> list[RowMapping]:
    """Per destination and kind: unfinished (pending or leased) and dead tasks, and the
    creation time of the oldest unfinished one."""
    unfinished = outbox.c.state.in_(["pending", "leased"])
    q = (select(outbox.c.destination, outbox.c.kind,
                func.count().filter(unfinished).label("waiting"),
                func.count().filter(outbox.c.state == "dead").label("dead"),
                func.count().filter(unfinished, outbox.c.attempts > 0).label("retrying"),
                func.min(outbox.c.created_at).filter(unfinished).label("oldest"))
         .where(outbox.c.state.in_(["pending", "leased", "dead"]))
         .group_by(outbox.c.destination, outbox.c.kind)
         .order_by(outbox.c.destination, outbox.c.kind))
    return list((await conn.execute(q)).mappings())


async def tasks_of(conn: AsyncConnection, *, kind: str, ref: str) -> list[RowMapping]:
    """Every task of ``kind`` for ``ref``, oldest first (what happened to one message)."""
    q = select(outbox).where(outbox.c.kind == kind, outbox.c.ref == ref).order_by(outbox.c.pk)
    return list((await conn.execute(q)).mappings())
