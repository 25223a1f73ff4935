"""A payment's changing columns, evidenced by its newest event.

A payment's chained digest covers only what was instructed (``CHAINED["payments"]``): its
state, payout account and rail reference must change as the payout goes on. Each change is an
event, chained whole, and since migration 0016 each event also records ``payment_sha256``, the
digest of the payment's changing columns (``CHANGING``) as they are once the event's change is
written, read back from the database in the same transaction. So a payment as it is must hash
to what its newest event recorded: an UPDATE that bypassed the hub (an account redirected, a
state set by hand) leaves the two apart, and ``gateway audit verify`` names the payment.

Verify alone would see such a change only until the hub's next event: that event's digest
would be taken of the changed row, making the change look like the hub's own. So every
writer of a payment first checks it against its newest event (``require_unchanged``; a
reconciliation batch asks the same, ``unchanged_clause``, in the lookup that locks its
payments) and refuses to write over one that differs: the payout of a redirected account is
held before it leaves, and the change stays visible to verify until someone restores the row.

The rule is shared with pension schedules (``gateway.evidence.changing``): one SQL expression
on PostgreSQL (a reconciliation run records it for thousands of payments in one statement) and
Python elsewhere. An event recorded before 0016 has none; a payment whose newest event is such
an event is counted as not compared, not as broken.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.evidence.changing import EvidencedChanges, RowsCheck
from gateway.storage.tables import payment_events, payments

__all__ = ["CHANGING", "EVIDENCED", "HELD", "check_payments", "digest",
           "digests", "mismatched", "require_unchanged", "sql_digest", "unchanged_clause"]

# Every column of ``payments`` the hub updates; the chained digest covers all the others (a
# test checks that the two are every column, each in one of them).
CHANGING = ("state", "rail_reference", "reason", "paid_at", "updated_at", "provider",
            "account", "account_name", "confirmed", "instruction")

# What a refused write tells its caller (and the outbox's last error, and the alert).
HELD = ("the hub holds it and writes nothing over it until its row is restored to what that "
        "event recorded (docs/evidence.md#a-payment-changed-beside-the-hub)")

EVIDENCED = EvidencedChanges(
    payments, payment_events, fk="payment_pk", sha="payment_sha256", changing=CHANGING,
    key="payment_id", noun="payment",
    what="its state, payout account or another changing column", held=HELD)


def digest(pk: int, values: Mapping[str, Any] | RowMapping) -> str:
    """The digest of payment ``pk`` whose changing columns are ``values`` (as read back)."""
    return EVIDENCED.digest(pk, values)


def sql_digest(columns: Any = None) -> ColumnElement[str]:
    """The same digest as a PostgreSQL expression over ``payments`` (or ``columns``: an
    UPDATE's RETURNING with ``pk`` and every changing column)."""
    return EVIDENCED.sql_digest(columns)


async def digests(conn: AsyncConnection, pks: Collection[int]) -> dict[int, str]:
    """The digest of each payment ``pks`` as this transaction sees it."""
    return await EVIDENCED.digests(conn, pks)


async def mismatched(conn: AsyncConnection, pks: Collection[int]) -> dict[int, str]:
    """The payments among ``pks`` that are not what their newest event recorded, with why."""
    return await EVIDENCED.mismatched(conn, pks)


async def require_unchanged(conn: AsyncConnection, pks: Collection[int]) -> None:
    """Refuse to write over a payment changed beside the hub.

    Raises:
        EvidenceMismatchError: the first (in pk order) of ``pks`` that is not what its newest
            event recorded. Writing it would record the change as the hub's own.
    """
    await EVIDENCED.require_unchanged(conn, pks)


def unchanged_clause() -> ColumnElement[bool]:
    """``require_unchanged`` as a PostgreSQL expression on ``payments``: a batched UPDATE's
    guard, or a column of the locking read a reconciliation batch moves from."""
    return EVIDENCED.unchanged_clause()


async def check_payments(conn: AsyncConnection, *, page: int = 5000) -> RowsCheck:
    """Compare every payment with its newest event, in pk order; stop at the first that
    differs (or has no event at all)."""
    return await EVIDENCED.check(conn, page=page)
