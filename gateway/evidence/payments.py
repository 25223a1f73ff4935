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
reconciliation's batched move has the same check in its UPDATE, ``unchanged_clause``) and
refuses to write over one that differs: the payout of a redirected account is held before it
leaves, and the change stays visible to verify until someone restores the row.

The digest is the chain's rule (``ChainedTable``), computed in one SQL expression on PostgreSQL
(a reconciliation run records it for thousands of payments in one statement) and in Python
elsewhere. An event recorded before 0016 has none; a payment whose newest event is such an
event is counted as not compared, not as broken.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, func, literal, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import EvidenceMismatchError
from gateway.evidence.digest import ChainedTable
from gateway.storage.bulk import one_of
from gateway.storage.tables import payment_events, payments

__all__ = ["CHANGING", "HELD", "PaymentsCheck", "check_payments", "digest", "digests",
           "mismatched", "require_unchanged", "sql_digest", "unchanged_clause"]

# Every column of ``payments`` the hub updates; the chained digest covers all the others (a
# test checks that the two are every column, each in one of them).
CHANGING = ("state", "rail_reference", "reason", "paid_at", "updated_at", "provider",
            "account", "account_name", "confirmed", "instruction")

_NOW = ChainedTable(payments, CHANGING)
_PAGE = 5000
# What a refused write tells its caller (and the outbox's last error, and the alert).
HELD = ("the hub holds it and writes nothing over it until its row is restored to what that "
        "event recorded (docs/evidence.md#a-payment-changed-beside-the-hub)")


def digest(pk: int, values: Mapping[str, Any] | RowMapping) -> str:
    """The digest of payment ``pk`` whose changing columns are ``values`` (as read back)."""
    return _NOW.digest(SimpleNamespace(pk=pk, **{c: values[c] for c in CHANGING}))


def sql_digest(columns: Any = None) -> ColumnElement[str]:
    """The same digest as a PostgreSQL expression over ``payments`` (or ``columns``: an
    UPDATE's RETURNING with ``pk`` and every changing column)."""
    return _NOW.sql_digest(columns=columns)


async def digests(conn: AsyncConnection, pks: Collection[int]) -> dict[int, str]:
    """The digest of each payment ``pks`` as this transaction sees it."""
    if not pks:
        return {}
    where = one_of(conn, payments.c.pk, list(pks))
    if conn.dialect.name == "postgresql":
        rows = await conn.execute(select(payments.c.pk, sql_digest()).where(where))
        return {int(pk): str(d) for pk, d in rows}
    rows = await conn.execute(select(payments.c.pk, *(payments.c[c] for c in CHANGING))
                              .where(where))
    return {int(r.pk): digest(r.pk, r._mapping) for r in rows}


def _against_newest(conn: AsyncConnection) -> tuple[Select[Any], bool]:
    """Each payment beside its newest event (outer join: a payment with none has NULLs)."""
    e = payment_events
    newest = (select(func.max(e.c.pk)).where(e.c.payment_pk == payments.c.pk)
              .correlate(payments).scalar_subquery())
    pg = conn.dialect.name == "postgresql"
    now = [sql_digest().label("now_sha256")] if pg else [payments.c[c] for c in CHANGING]
    return (select(payments.c.pk, payments.c.payment_id, e.c.pk.label("event_pk"), e.c.cause,
                   e.c.payment_sha256, *now)
            .select_from(payments.outerjoin(e, e.c.pk == newest))), pg


def _differs(r: Row[Any], pg: bool) -> str | None:
    """Why payment ``r`` (a row of ``_against_newest``) is not what its newest event
    recorded, or None if it is (or its newest event predates 0016 and cannot say)."""
    name = f"payments pk {r.pk} (payment {r.payment_id})"
    if r.event_pk is None:
        return f"{name}: it has no event, so it was not written by the hub"
    if r.payment_sha256 is None:
        return None
    if (r.now_sha256 if pg else digest(r.pk, r._mapping)) != r.payment_sha256:
        return (f"{name}: its state, payout account or another changing column is not what "
                f"its newest event (payment_events pk {r.event_pk}, {r.cause}) recorded: it "
                "was changed without an event")
    return None


async def mismatched(conn: AsyncConnection, pks: Collection[int]) -> dict[int, str]:
    """The payments among ``pks`` that are not what their newest event recorded, each with
    why; empty when every one is (the check every writer makes before it writes)."""
    if not pks:
        return {}
    q, pg = _against_newest(conn)
    rows = await conn.execute(q.where(one_of(conn, payments.c.pk, list(pks))))
    return {int(r.pk): why for r in rows if (why := _differs(r, pg)) is not None}


async def require_unchanged(conn: AsyncConnection, pks: Collection[int]) -> None:
    """Refuse to write over a payment changed beside the hub.

    Raises:
        EvidenceMismatchError: the first (in pk order) of ``pks`` that is not what its newest
            event recorded. Writing it would record the change as the hub's own.
    """
    found = await mismatched(conn, pks)
    if found:
        raise EvidenceMismatchError(f"{found[min(found)]}; {HELD}")


def unchanged_clause() -> ColumnElement[bool]:
    """The same check as a PostgreSQL condition on ``payments`` (a batched UPDATE's guard):
    the payment has an event, and its newest one predates 0016 or recorded it as it is."""
    e = payment_events
    newest = (select(func.coalesce(e.c.payment_sha256, ""))
              .where(e.c.payment_pk == payments.c.pk).order_by(e.c.pk.desc()).limit(1)
              .correlate(payments).scalar_subquery())
    return newest.in_([literal(""), sql_digest()])


@dataclass(slots=True)
class PaymentsCheck:
    compared: int = 0  # payments whose newest event recorded their changing columns
    uncompared: int = 0  # payments whose newest event predates migration 0016
    problem: str | None = None  # the first payment that is not what its newest event says


async def check_payments(conn: AsyncConnection, *, page: int = _PAGE) -> PaymentsCheck:
    """Compare every payment with its newest event, ``page`` payments a query, in pk order;
    stop at the first that differs (or has no event at all)."""
    result = PaymentsCheck()
    q, pg = _against_newest(conn)
    lo = 0
    while True:
        rows = (await conn.execute(
            q.where(payments.c.pk > lo).order_by(payments.c.pk).limit(page))).all()
        for r in rows:
            if (why := _differs(r, pg)) is not None:
                result.problem = why
                return result
            if r.payment_sha256 is None:
                result.uncompared += 1
            else:
                result.compared += 1
        if len(rows) < page:
            return result
        lo = rows[-1].pk
