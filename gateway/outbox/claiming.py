"""Claim due outbox work for one dispatcher.

PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets any number of dispatcher processes claim disjoint
work without waiting on each other; each claimed task gets a lease, and a task whose lease ran
out (its dispatcher died) becomes claimable again. SQLite: the whole claim is one
``BEGIN IMMEDIATE`` transaction, so claims are serialised and equally exclusive.

Order per ``ordering_key``: a task is claimable only while no earlier task with the same key is
unfinished (pending, leased or dead), so a ``payment.notice`` can never overtake its payment
and partner messages of one case arrive in the order they were written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, bindparam, exists, or_, select

from gateway.outbox.records import UNFINISHED, Task, take_leases
from gateway.storage.tables import outbox
from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["CLAIMABLE", "claim"]

# The states a claim reads. Done tasks are never deleted, so they soon outnumber the open ones
# by far: the claim reads only rows in these states, off partial indexes on exactly these
# states (migration 0013_outbox_claim_indexes), so its cost follows the open work, not the
# outbox's history. The states are written into the SQL, not bound: a prepared statement's
# generic plan cannot prove a partial index's predicate from parameters.
CLAIMABLE = ("pending", "leased")


def _state_in(column: ColumnElement[str], states: Sequence[str]) -> ColumnElement[bool]:
    return column.in_(bindparam(f"states_{'_'.join(states)}", list(states),
                                literal_execute=True, expanding=True))


async def claim(
    uow_factory: UnitOfWorkFactory, *, owner: str, now: datetime, lease: timedelta, limit: int,
    kinds: Sequence[str] | None = None, skip_destinations: Sequence[str] = (),
) -> list[Task]:
    """Lease up to ``limit`` due tasks to ``owner`` and return them, oldest first."""
    earlier = outbox.alias("earlier")
    due = and_(_state_in(outbox.c.state, CLAIMABLE), or_(
        and_(outbox.c.state == "pending", outbox.c.next_attempt_at <= now),
        and_(outbox.c.state == "leased", outbox.c.lease_expires_at < now),
    ))
    blocked = exists().where(
        earlier.c.ordering_key == outbox.c.ordering_key,
        earlier.c.pk < outbox.c.pk,
        _state_in(earlier.c.state, UNFINISHED),
    )
    candidates = select(outbox.c.pk).where(due, ~blocked)
    if kinds:
        candidates = candidates.where(outbox.c.kind.in_(list(kinds)))
    if skip_destinations:
        candidates = candidates.where(outbox.c.destination.not_in(list(skip_destinations)))
    candidates = candidates.order_by(outbox.c.pk).limit(limit)
    async with uow_factory() as uow:
        conn = uow.conn
        if conn.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True, of=outbox)
        pks = list((await conn.execute(candidates)).scalars())
        if not pks:
            return []
        tasks = await take_leases(conn, pks, owner=owner, now=now, lease=lease)
        await uow.commit()
    return tasks
