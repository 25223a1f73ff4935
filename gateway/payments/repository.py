"""SQL for payments and their events (Core; inside the caller's transaction, never commits)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, BigInteger, bindparam, func, insert, literal, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.evidence import payments as evidence
from gateway.evidence.payments import CHANGING
from gateway.storage.bulk import insert_rows, one_of
from gateway.storage.keyset import newest_first
from gateway.storage.tables import payment_discrepancies, payment_events, payments

__all__ = [
    "PaymentFilter", "by_ids", "by_key", "discrepancies", "discrepancies_page",
    "discrepancy_by_pk", "events_of", "insert_events", "newest", "open_discrepancy",
    "move_with_events", "resolve_discrepancies", "update_many",
]


async def by_ids(conn: AsyncConnection, payment_ids: Sequence[str], *,
                 lock: bool = False) -> dict[str, RowMapping]:
    """Return payments by payment id; ``lock`` takes their row locks (PostgreSQL) in pk order."""
    if not payment_ids:
        return {}
    q = select(payments).where(payments.c.payment_id.in_(list(payment_ids))).order_by(
        payments.c.pk)
    if lock:
        q = q.with_for_update(of=payments)
    return {r.payment_id: r for r in (await conn.execute(q)).mappings()}


async def by_key(conn: AsyncConnection, rail: str, idempotency_key: str, *,
                 lock: bool = False) -> RowMapping | None:
    q = select(payments).where(payments.c.idempotency_key == idempotency_key,
                               payments.c.rail == rail)
    if lock:
        q = q.with_for_update(of=payments)
    return (await conn.execute(q)).mappings().first()


async def update_many(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Write new column values (all of ``CHANGING``) of several payments in one statement."""
    if not rows:
        return
    stmt = update(payments).where(payments.c.pk == bindparam("b_pk")).values(
        {c: bindparam(f"b_{c}") for c in CHANGING})
    await conn.execute(stmt, [{"b_pk": r["pk"], **{f"b_{c}": r[c] for c in CHANGING}}
                              for r in rows])


async def move_with_events(conn: AsyncConnection, pks: Sequence[int], from_state: str,
                           to_state: str, cause: str, detail: str, now: datetime, *,
                           checked: bool = False) -> int:
    """Move the payments ``pks`` still in ``from_state`` to ``to_state``, each with its event
    (``cause``, ``detail``, in the order of ``pks``); return how many moved. A payment
    changed beside the hub (not what its newest event recorded) does not move either,
    unless ``checked``: the caller holds their row locks and found them unchanged.

    On PostgreSQL one statement (the UPDATE's RETURNING feeds the events' INSERT), so the
    events are neither built nor sent row by row: a reconciliation run makes this move by the
    thousand. Elsewhere the UPDATE, then the events of the payments it returned. Either way
    only the payments that moved get an event; the caller fails the transaction if not all
    did.
    """
    if not pks:
        return 0
    changed = [payments.c.pk, *(payments.c[c] for c in CHANGING)]
    if conn.dialect.name == "postgresql":
        guard = [] if checked else [evidence.unchanged_clause()]
        moved = (update(payments)
                 .where(one_of(conn, payments.c.pk, pks), payments.c.state == from_state,
                        *guard)
                 .values(state=to_state, updated_at=now)
                 .returning(*changed).cte("moved"))
        order = func.unnest(bindparam("order_pks", list(pks), type_=ARRAY(BigInteger))
                            ).table_valued("pk", with_ordinality="n").render_derived()
        cols = payment_events.c
        source = (select(moved.c.pk, literal(from_state, cols.from_state.type),
                         literal(to_state, cols.to_state.type), literal(cause, cols.cause.type),
                         literal(detail, cols.detail.type), literal(now, cols.at.type),
                         evidence.sql_digest(moved.c))
                  .select_from(order.join(moved, moved.c.pk == order.c.pk))
                  .order_by(order.c.n))
        res = await conn.execute(insert(payment_events).from_select(
            ["payment_pk", "from_state", "to_state", "cause", "detail", "at", "payment_sha256"],
            source))
        return int(res.rowcount)
    # SQLite writes one transaction at a time: nothing can change between check and UPDATE.
    unchanged = set(pks) if checked else set(pks) - set(await evidence.mismatched(conn, pks))
    res = await conn.execute(update(payments).where(
        one_of(conn, payments.c.pk, list(unchanged)), payments.c.state == from_state).values(
        state=to_state, updated_at=now).returning(*changed))
    written = {r.pk: evidence.digest(r.pk, r._mapping) for r in res}
    await insert_rows(conn, payment_events, [dict(
        payment_pk=pk, from_state=from_state, to_state=to_state, cause=cause, detail=detail,
        at=now, payment_sha256=written[pk]) for pk in pks if pk in written])
    return len(written)


async def insert_events(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Record events of payments whose changes this transaction has already written: each
    event gets the digest of its payment's changing columns as read back now."""
    if rows:
        now = await evidence.digests(conn, {r["payment_pk"] for r in rows})
        await conn.execute(insert(payment_events), [
            {**r, "payment_sha256": now[r["payment_pk"]]} for r in rows])


async def events_of(conn: AsyncConnection, payment_pk: int) -> list[RowMapping]:
    q = select(payment_events).where(payment_events.c.payment_pk == payment_pk).order_by(
        payment_events.c.pk)
    return list((await conn.execute(q)).mappings())


async def open_discrepancy(conn: AsyncConnection, values: dict[str, Any]) -> bool:
    """Insert a discrepancy unless this payment already has one of its kind (the caller holds
    the payment's row lock, so the check cannot race); return whether it is new."""
    seen = (await conn.execute(select(payment_discrepancies.c.pk).where(
        payment_discrepancies.c.payment_pk == values["payment_pk"],
        payment_discrepancies.c.kind == values["kind"]))).first()
    if seen is not None:
        return False
    await conn.execute(insert(payment_discrepancies).values(**values))
    return True


async def discrepancies(conn: AsyncConnection, *, state: str | None = "open",
                        payment_id: str | None = None, limit: int = 100) -> list[RowMapping]:
    """Return discrepancies, oldest first (optionally of one state or payment)."""
    q = select(payment_discrepancies).order_by(payment_discrepancies.c.pk).limit(limit)
    if state is not None:
        q = q.where(payment_discrepancies.c.state == state)
    if payment_id is not None:
        q = q.where(payment_discrepancies.c.payment_id == payment_id)
    return list((await conn.execute(q)).mappings())


async def discrepancy_by_pk(conn: AsyncConnection, pk: int) -> RowMapping | None:
    q = select(payment_discrepancies).where(payment_discrepancies.c.pk == pk)
    row: RowMapping | None = (await conn.execute(q)).mappings().first()
    return row


async def discrepancies_page(conn: AsyncConnection, *, state: str | None,
                             payment_id: str | None, before: int | None,
                             limit: int) -> list[RowMapping]:
    """Return discrepancies newest first below pk ``before``."""
    q = select(payment_discrepancies).order_by(payment_discrepancies.c.pk.desc()).limit(limit)
    if state is not None:
        q = q.where(payment_discrepancies.c.state == state)
    if payment_id is not None:
        q = q.where(payment_discrepancies.c.payment_id == payment_id)
    if before is not None:
        q = q.where(payment_discrepancies.c.pk < before)
    return list((await conn.execute(q)).mappings())


async def resolve_discrepancies(conn: AsyncConnection, payment_pk: int, *, detail: str,
                                now: datetime, only_pk: int | None = None) -> int:
    """Mark the payment's open discrepancies (or just ``only_pk``) resolved; return how many."""
    q = update(payment_discrepancies).where(payment_discrepancies.c.payment_pk == payment_pk,
                                            payment_discrepancies.c.state == "open")
    if only_pk is not None:
        q = q.where(payment_discrepancies.c.pk == only_pk)
    result = await conn.execute(q.values(state="resolved", resolved_at=now, detail=detail))
    return result.rowcount or 0


@dataclass(frozen=True, slots=True)
class PaymentFilter:
    """Filters of a payment query (equality, and a creation time range); None matches
    anything."""

    state: str | None = None
    rail: str | None = None
    partner_id: str | None = None
    claim_ref: str | None = None
    pension_ref: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


_EQUAL = ("state", "rail", "partner_id", "claim_ref", "pension_ref")


async def newest(conn: AsyncConnection, where: PaymentFilter, *, before: int | None = None,
                 limit: int = 100) -> list[RowMapping]:
    """Return up to ``limit`` payments matching ``where``, newest first (by creation time
    when a time range is given, see gateway.storage.keyset), after pk ``before``."""
    q = select(payments).limit(limit)
    for name in _EQUAL:
        value = getattr(where, name)
        if value is not None:
            q = q.where(payments.c[name] == value)
    if where.created_from is not None:
        q = q.where(payments.c.created_at >= where.created_from)
    if where.created_to is not None:
        q = q.where(payments.c.created_at < where.created_to)
    q = newest_first(q, payments.c.pk, payments.c.created_at, before=before,
                     timed=where.created_from is not None or where.created_to is not None)
    return list((await conn.execute(q)).mappings())
