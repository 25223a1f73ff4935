"""A pension schedule's changing columns, evidenced by its newest event.

A schedule creates a payment every month from its own columns, so a change beside the hub
would reach every later period: an account redirected, or a stopped pension (a death) set back
to active. Its chained digest covers it as awarded (``CHAINED["pension_schedules"]``; the
PostgreSQL guard of migration 0017 refuses changing those columns); the columns the hub changes
(``CHANGING``) are tied to its events as a payment's are (``gateway.evidence.changing``): each
change is an event recording the digest of the schedule after it, every writer checks the
schedule against its newest event first and refuses to write over one that differs, and the
monthly run holds such a schedule (no period is created) until someone restores it.

Its payments are held with it (``held_schedules``, asked by the payout worker): the periods
already created may be after a death that a change beside the hub keeps from being recorded
(the death's processing is refused while the schedule differs, and retried), so none of them
leaves until the schedule is restored and the death, if any, has stopped them.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.evidence.changing import EvidencedChanges
from gateway.storage.bulk import one_of
from gateway.storage.tables import pension_events, pension_schedules

__all__ = ["CHANGING", "EVIDENCED", "HELD", "held_schedules"]

# Every column of ``pension_schedules`` the hub updates; the chained digest covers all the
# others (a test checks that the two are every column, each in one of them).
CHANGING = ("state", "reason", "provider", "account", "account_name", "next_period",
            "life_certificate_due_on", "died_on", "updated_at")

HELD = ("the hub creates no period of it and writes nothing over it until its row is restored "
        "to what that event recorded (docs/evidence.md#a-schedule-changed-beside-the-hub)")

EVIDENCED = EvidencedChanges(
    pension_schedules, pension_events, fk="schedule_pk", sha="schedule_sha256",
    changing=CHANGING, key="pension_ref", noun="pension",
    what="its state, payout account or another changing column", held=HELD)


async def held_schedules(conn: AsyncConnection, refs: Collection[str]) -> dict[str, str]:
    """The schedules among ``refs`` (pension references) changed beside the hub, each with
    why: their payments are held with them."""
    if not refs:
        return {}
    rows = await conn.execute(select(pension_schedules.c.pk, pension_schedules.c.pension_ref)
                              .where(one_of(conn, pension_schedules.c.pension_ref, list(refs))))
    by_pk = {int(pk): str(ref) for pk, ref in rows}
    return {by_pk[pk]: why for pk, why in (await EVIDENCED.mismatched(conn, by_pk)).items()}
