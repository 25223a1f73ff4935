"""Outbox records: enqueue with the business change; finish only while holding the lease."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.storage.tables import outbox

__all__ = ["LeaseLost", "Task", "complete", "dead_letter", "enqueue", "reschedule"]

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
    result = await conn.execute(
        insert(outbox).values(
            kind=kind, destination=destination, ordering_key=ordering_key, ref=ref,
            state="pending", attempts=0, next_attempt_at=now + delay, created_at=now,
            updated_at=now,
        ).returning(outbox.c.pk)
    )
    return int(result.scalar_one())


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
