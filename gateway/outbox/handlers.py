"""The handler seam: one kind of outbox work, and the helper for one-task-at-a-time handlers.

A handler does its business change and ``records.complete`` in one unit of work, and returns
per task either ``None`` (done) or the exception that stopped it; the dispatcher applies the
one retry policy to that exception. Handlers never retry on their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from gateway.outbox.records import Task

__all__ = ["Handler", "handle_each"]


class Handler(Protocol):
    """Does one kind of outbox work."""

    kind: str
    batch_size: int  # how many tasks of this kind one call may take (1: one at a time)

    async def handle(self, tasks: Sequence[Task]) -> Sequence[BaseException | None]:
        """Do the work of ``tasks``; complete each in its own business transaction.

        Returns:
            Per task, None if it was completed, else the exception that stopped it.
        """
        ...


async def handle_each(
    tasks: Sequence[Task], one: Callable[[Task], Awaitable[None]]
) -> list[BaseException | None]:
    """Run ``one`` for each task in turn; one task's failure never hides another's result."""
    results: list[BaseException | None] = []
    for task in tasks:
        try:
            await one(task)
            results.append(None)
        except Exception as exc:
            results.append(exc)
    return results
