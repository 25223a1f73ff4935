"""SQL for statements, runs, items and cases (Core; inside the caller's transaction, never
commits). Every lookup a run makes is a batch: one statement per ~2,000 lines, never one per
line."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    and_,
    bindparam,
    exists,
    func,
    insert,
    null,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.evidence import payments as payments_evidence
from gateway.reconciliation.domain import HELD_DETAIL, ItemKind
from gateway.reconciliation.report import ITEM_FIELDS
from gateway.storage.bulk import insert_records, one_of
from gateway.storage.tables import (
    payments,
    recon_cases,
    recon_items,
    recon_runs,
    recon_statements,
    statement_blobs,
)

__all__ = [
    "Matched", "advisory_lock", "blobs", "case_by_pk", "cases_page", "current_run", "expected_page",
    "held_payments_of", "insert_items", "insert_run", "item_records_page", "items_page",
    "line_seen", "matched_in", "newest_runs", "payments_by_ids", "payments_by_refs",
    "previous_run", "resolve_case", "run_by_id", "run_by_key", "runs_of", "runs_page",
    "statement_by_sha", "unknown_lines",
]

_LINE_ITEM = recon_items.c.line_no.is_not(None)
# Items are numbered in a 32-bit column; the APIs' cursors are 64-bit.
_MAX_SEQ = 2**31 - 1

# What matching and classifying read of a payment (service._ledger): not the
# whole row, whose ~30 columns (four of them timestamps converted per row) made the key lookup
# cost several times the floor's. A return re-reads the full row, locked (service._locked).
_MATCH = [payments.c[c] for c in ("pk", "payment_id", "state", "rail", "amount_minor",
                                  "currency", "rail_reference", "paid_at")]
# What a statement line's rules read: not when it was paid (the ledger side's question).
_LINE_MATCH = [c for c in _MATCH if c.name != "paid_at"]


class Matched(NamedTuple):
    """A payment a batch of lines named, as the lookup read it (``_LINE_MATCH``, then
    ``unchanged``). A plain tuple, not the driver's row: a run reads some twenty attributes
    of each, and a SQLAlchemy Row answers ``row.state`` through ``__getattr__``, about ten
    times slower than a named tuple (a tenth of a million-line run, measured)."""

    pk: int
    payment_id: str
    state: str
    rail: str
    amount_minor: int
    currency: str
    rail_reference: str | None
    unchanged: bool | None  # as its newest event recorded (PostgreSQL); None: to be asked


async def advisory_lock(conn: AsyncConnection, rail: str, day: date) -> None:
    """Serialise runs of one rail and date across processes (PostgreSQL; SQLite has one
    writer at a time already). Released when the transaction ends."""
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"recon|{rail}|{day.isoformat()}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


# -- statements ------------------------------------------------------------------------------

async def statement_by_sha(conn: AsyncConnection, rail: str, sha256: str) -> RowMapping | None:
    q = select(recon_statements).where(recon_statements.c.rail == rail,
                                       recon_statements.c.sha256 == sha256)
    return (await conn.execute(q)).mappings().first()


async def insert_statement(conn: AsyncConnection, values: dict[str, Any]) -> int:
    pk = (await conn.execute(insert(recon_statements).values(**values)
                             .returning(recon_statements.c.pk))).scalar_one()
    return int(pk)


async def insert_blob(conn: AsyncConnection, statement_pk: int, seq: int, data: bytes) -> None:
    await conn.execute(insert(statement_blobs).values(statement_pk=statement_pk, seq=seq,
                                                      data=data))


async def finish_statement(conn: AsyncConnection, pk: int, sha256: str, size: int,
                           chunks: int) -> None:
    await conn.execute(update(recon_statements).where(recon_statements.c.pk == pk).values(
        sha256=sha256, size=size, chunks=chunks))


async def blobs(conn: AsyncConnection, statement_pk: int) -> AsyncIterator[bytes]:
    """A stored statement's bytes, one chunk at a time."""
    seq = -1
    while True:
        row = (await conn.execute(
            select(statement_blobs.c.seq, statement_blobs.c.data)
            .where(statement_blobs.c.statement_pk == statement_pk, statement_blobs.c.seq > seq)
            .order_by(statement_blobs.c.seq).limit(1))).first()
        if row is None:
            return
        yield bytes(row.data)
        seq = row.seq


# -- runs ------------------------------------------------------------------------------------

async def run_by_key(conn: AsyncConnection, run_key: str) -> RowMapping | None:
    q = select(recon_runs).where(recon_runs.c.run_key == run_key)
    return (await conn.execute(q)).mappings().first()


async def held_payments_of(conn: AsyncConnection, run_pk: int) -> list[int]:
    """The payments a run held (changed beside the hub, not moved): its ``state_mismatch``
    items that say so (domain.classify_line)."""
    q = select(recon_items.c.payment_pk).where(
        recon_items.c.run_pk == run_pk, recon_items.c.kind == ItemKind.state_mismatch.value,
        recon_items.c.detail.startswith(HELD_DETAIL, autoescape=True),
        recon_items.c.payment_pk.is_not(None))
    return sorted({int(pk) for pk in (await conn.execute(q)).scalars()})


async def run_by_pk(conn: AsyncConnection, pk: int) -> RowMapping:
    q = select(recon_runs).where(recon_runs.c.pk == pk)
    return (await conn.execute(q)).mappings().one()


async def run_by_id(conn: AsyncConnection, run_id: str) -> RowMapping | None:
    q = select(recon_runs).where(recon_runs.c.run_id == run_id)
    return (await conn.execute(q)).mappings().first()


async def current_run(conn: AsyncConnection, rail: str, day: date) -> RowMapping | None:
    """The run of ``rail`` and ``day`` that no other supersedes."""
    q = (select(recon_runs).where(recon_runs.c.rail == rail, recon_runs.c.business_date == day,
                                  recon_runs.c.superseded_by_pk.is_(None))
         .order_by(recon_runs.c.pk.desc()).limit(1))
    return (await conn.execute(q)).mappings().first()


async def runs_of(conn: AsyncConnection, rail: str, day: date) -> list[int]:
    """The runs of ``rail`` and ``day`` so far, oldest first: a new run of that rail and day
    supersedes every one of them, the current one directly and the others through it."""
    q = (select(recon_runs.c.pk).where(recon_runs.c.rail == rail,
                                       recon_runs.c.business_date == day)
         .order_by(recon_runs.c.pk))
    return [int(pk) for pk in (await conn.execute(q)).scalars()]


async def summaries(conn: AsyncConnection, pks: Sequence[int]) -> list[tuple[int, str]]:
    """(pk, summary.json) of the runs ``pks``, newest first."""
    if not pks:
        return []
    q = (select(recon_runs.c.pk, recon_runs.c.summary).where(recon_runs.c.pk.in_(list(pks)))
         .order_by(recon_runs.c.pk.desc()))
    return [(int(pk), summary) for pk, summary in await conn.execute(q)]


async def previous_run(conn: AsyncConnection, rail: str, day: date) -> RowMapping | None:
    """The current run of the latest earlier business date (for sequence continuity)."""
    q = (select(recon_runs).where(recon_runs.c.rail == rail, recon_runs.c.business_date < day,
                                  recon_runs.c.superseded_by_pk.is_(None),
                                  recon_runs.c.statement_pk.is_not(None))
         .order_by(recon_runs.c.business_date.desc(), recon_runs.c.pk.desc()).limit(1))
    return (await conn.execute(q)).mappings().first()


async def insert_run(conn: AsyncConnection, values: dict[str, Any]) -> int:
    pk = (await conn.execute(insert(recon_runs).values(**values).returning(recon_runs.c.pk))
          ).scalar_one()
    return int(pk)


async def finish_run(conn: AsyncConnection, pk: int, values: dict[str, Any]) -> None:
    await conn.execute(update(recon_runs).where(recon_runs.c.pk == pk).values(**values))


async def runs_page(conn: AsyncConnection, *, rail: str | None, day: date | None,
                    before: int | None, limit: int) -> list[RowMapping]:
    """Runs, newest first, below pk ``before``."""
    q = select(recon_runs).order_by(recon_runs.c.pk.desc()).limit(limit)
    if rail is not None:
        q = q.where(recon_runs.c.rail == rail)
    if day is not None:
        q = q.where(recon_runs.c.business_date == day)
    if before is not None:
        q = q.where(recon_runs.c.pk < before)
    return list((await conn.execute(q)).mappings())


# -- items -----------------------------------------------------------------------------------

async def insert_items(conn: AsyncConnection, records: Sequence[Sequence[Any]]) -> None:
    """Insert items, as records in ``ITEM_FIELDS`` order."""
    await insert_records(conn, recon_items, ITEM_FIELDS, records)


async def item_records_page(conn: AsyncConnection, run_pk: int, *, after: int,
                            limit: int) -> Sequence[Sequence[Any]]:
    """Items of a run in order after item ``seq`` ``after``, as records (``ITEM_FIELDS``)."""
    q = (select(*(recon_items.c[f] for f in ITEM_FIELDS))
         .where(recon_items.c.run_pk == run_pk, recon_items.c.seq > after)
         .order_by(recon_items.c.seq).limit(limit))
    return (await conn.execute(q)).all()


async def items_page(conn: AsyncConnection, run_pk: int, *, after: int = 0,
                     limit: int = 2000, kind: str | None = None) -> list[RowMapping]:
    """Items of a run in order, after item ``seq`` ``after``."""
    if after >= _MAX_SEQ:  # past any item; as a bind it would overflow the column
        return []
    q = (select(recon_items).where(recon_items.c.run_pk == run_pk, recon_items.c.seq > after)
         .order_by(recon_items.c.seq).limit(limit))
    if kind is not None:
        q = q.where(recon_items.c.kind == kind)
    return list((await conn.execute(q)).mappings())


async def line_seen(conn: AsyncConnection, run_pk: int,
                    payment_pks: Sequence[int]) -> set[tuple[int, bool]]:
    """(payment pk, back) of the payments that already met a line of this run: an outgoing
    line (back False) or a return/reversal line (back True)."""
    if not payment_pks:
        return set()
    q = select(recon_items.c.payment_pk, recon_items.c.line_kind).where(
        recon_items.c.run_pk == run_pk, recon_items.c.payment_pk.in_(list(payment_pks)),
        _LINE_ITEM)
    return {(r.payment_pk, r.line_kind in ("returned", "reversal"))
            for r in (await conn.execute(q))}


async def moved_by(conn: AsyncConnection, run_pk: int,
                   payment_pks: Sequence[int]) -> dict[int, str]:
    """What this run's items so far make of the payments (for a run that moves nothing, on
    an unproven statement): ``returned`` for a return or reversal classified as one, else
    ``reconciled`` for a payout line matched; payments it did not move are left out."""
    if not payment_pks:
        return {}
    q = select(recon_items.c.payment_pk, recon_items.c.kind, recon_items.c.line_kind).where(
        recon_items.c.run_pk == run_pk, recon_items.c.payment_pk.in_(list(payment_pks)),
        recon_items.c.kind.in_(("matched", "returned", "reversed")))
    out: dict[int, str] = {}
    for r in await conn.execute(q):
        if r.kind in ("returned", "reversed"):
            out[r.payment_pk] = "returned"
        elif r.line_kind == "payout":
            out.setdefault(r.payment_pk, "reconciled")
    return out


async def matched_in(conn: AsyncConnection, run_pks: Sequence[int],
                     payment_pks: Sequence[int]) -> set[int]:
    """The payments any of the runs ``run_pks`` matched (reconciled)."""
    if not run_pks or not payment_pks:
        return set()
    q = select(recon_items.c.payment_pk).where(
        recon_items.c.run_pk.in_(list(run_pks)), recon_items.c.kind == "matched",
        recon_items.c.payment_pk.in_(list(payment_pks)))
    return {r.payment_pk for r in (await conn.execute(q))}


async def set_proposals(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        stmt = update(recon_items).where(recon_items.c.pk == bindparam("b_pk")).values(
            proposals=bindparam("b_proposals"))
        await conn.execute(stmt, list(rows))


async def unknown_lines(conn: AsyncConnection, run_pk: int, *, after: int,
                        limit: int) -> list[RowMapping]:
    """Keyless outgoing lines of a run (candidates for proposals), in order."""
    q = (select(recon_items).where(
        recon_items.c.run_pk == run_pk, recon_items.c.kind == "unknown_line",
        recon_items.c.payment_pk.is_(None), recon_items.c.line_kind == "payout",
        recon_items.c.seq > after).order_by(recon_items.c.seq).limit(limit))
    return list((await conn.execute(q)).mappings())


async def kinds_by_subject(conn: AsyncConnection, run_pk: int, kinds: Sequence[str], *,
                           after: int, limit: int) -> list[RowMapping]:
    q = (select(recon_items.c.pk, recon_items.c.subject, recon_items.c.kind)
         .where(recon_items.c.run_pk == run_pk, recon_items.c.kind.in_(list(kinds)),
                recon_items.c.pk > after).order_by(recon_items.c.pk).limit(limit))
    return list((await conn.execute(q)).mappings())


async def subjects_in(conn: AsyncConnection, run_pk: int, kinds: Sequence[str],
                      subjects: Sequence[str]) -> dict[str, set[str]]:
    """subject -> kinds of the case-worthy items of a run among ``subjects``."""
    if not subjects:
        return {}
    q = select(recon_items.c.subject, recon_items.c.kind).where(
        recon_items.c.run_pk == run_pk, recon_items.c.kind.in_(list(kinds)),
        recon_items.c.subject.in_(list(subjects)))
    out: dict[str, set[str]] = {}
    for r in await conn.execute(q):
        out.setdefault(r.subject, set()).add(r.kind)
    return out


# -- the ledger side -------------------------------------------------------------------------

def _expected_state(replaced: Sequence[int]) -> Any:
    """Paid, or reconciled by one of the runs ``replaced`` (every earlier run of the rail and
    date, not only the last, as ``runs_of``): that booking is the one this statement
    restates, so the payment is expected again."""
    paid = payments.c.state == "paid"
    if not replaced:
        return paid
    by_old = exists().where(recon_items.c.run_pk.in_(list(replaced)),
                            recon_items.c.kind == "matched",
                            recon_items.c.payment_pk == payments.c.pk)
    return or_(paid, and_(payments.c.state == "reconciled", by_old))


def _not_on_statement(run_pk: int) -> Any:
    return ~exists().where(recon_items.c.run_pk == run_pk, _LINE_ITEM,
                           recon_items.c.payment_pk == payments.c.pk)


def _matching(conn: AsyncConnection) -> Any:
    """The lookup of payments for a batch of lines, as rows (a named tuple each, cheaper
    than a mapping at a million): what a line's rules read (``_LINE_MATCH``), whether
    each is as its newest event recorded (``unchanged``: on PostgreSQL, where the digest is
    one SQL expression; None elsewhere, to be asked), and the rows locked in pk order.

    Locked because the run may move them: from this read to the run's commit nothing else
    can change them, so what this read found (state and ``unchanged``) still holds when the
    run writes, and the write need not check again (``reconcile_many(checked=True)``). The
    lock is an UPDATE's own (FOR NO KEY UPDATE): it stops other writers of the row, not a
    row that only refers to it. Every payment a line names is locked, moved or not: which
    ones will move is known only once the batch is classified."""
    unchanged = (payments_evidence.unchanged_clause() if conn.dialect.name == "postgresql"
                 else null())
    return (select(*_LINE_MATCH, unchanged.label("unchanged")).order_by(payments.c.pk)
            .with_for_update(of=payments, key_share=True))


async def payments_by_ids(conn: AsyncConnection, rail: str,
                          payment_ids: Sequence[str]) -> list[Matched]:
    """Payments of ``rail`` by payment id, locked (``_matching``)."""
    if not payment_ids:
        return []
    # By the unique payment id alone: a condition on the rail (a handful of values) can lure
    # the planner into scanning the rail's whole index. Another rail's payment (a line naming
    # one is a mistake: ids are the hub's own) is dropped here, locked but never written.
    q = _matching(conn).where(one_of(conn, payments.c.payment_id, payment_ids))
    return _matched(await conn.execute(q), rail)


async def payments_by_refs(conn: AsyncConnection, rail: str,
                           refs: Sequence[str]) -> list[Matched]:
    """Payments of ``rail`` by the rail's reference (or UETR), in pk order, locked
    (``_matching``)."""
    if not refs:
        return []
    q = _matching(conn).where(payments.c.rail_reference.in_(list(refs)))
    return _matched(await conn.execute(q), rail)


def _matched(result: Any, rail: str) -> list[Matched]:
    make = Matched._make
    return [m for m in map(make, result) if m.rail == rail]


async def expected_page(conn: AsyncConnection, rail: str, *, paid_before: datetime,
                        run_pk: int, replaced: Sequence[int], after: int,
                        limit: int) -> list[RowMapping]:
    """Paid payments of ``rail`` (paid before ``paid_before``) on no line of this run."""
    q = (select(*_MATCH).where(
        payments.c.rail == rail, _expected_state(replaced), payments.c.pk > after,
        payments.c.paid_at < paid_before, _not_on_statement(run_pk))
         .order_by(payments.c.pk).limit(limit))
    return list((await conn.execute(q)).mappings())


async def candidates(conn: AsyncConnection, rail: str, *, pairs: Sequence[tuple[int, str]],
                     since: datetime, until: datetime, run_pk: int,
                     replaced: Sequence[int]) -> list[RowMapping]:
    """Expected payments with one of the (amount, currency) ``pairs``, paid in the window."""
    if not pairs:
        return []
    q = (select(*_MATCH).where(
        payments.c.rail == rail, _expected_state(replaced),
        tuple_(payments.c.amount_minor, payments.c.currency).in_(list(pairs)),
        payments.c.paid_at >= since, payments.c.paid_at < until, _not_on_statement(run_pk))
         .order_by(payments.c.pk).limit(5000))
    return list((await conn.execute(q)).mappings())


# -- cases -----------------------------------------------------------------------------------

async def cases_of(conn: AsyncConnection, rail: str,
                   keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], RowMapping]:
    """Existing cases of ``rail`` by (subject, kind), each with ``last_on``: the business
    date of the run that last found it."""
    if not keys:
        return {}
    q = (select(recon_cases, recon_runs.c.business_date.label("last_on"))
         .outerjoin(recon_runs, recon_runs.c.pk == recon_cases.c.last_run_pk)
         .where(recon_cases.c.rail == rail,
                tuple_(recon_cases.c.subject, recon_cases.c.kind).in_(list(keys))))
    return {(r.subject, r.kind): r for r in (await conn.execute(q)).mappings()}


async def insert_cases(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(recon_cases), list(rows))


_CASE_UPDATABLE = ("state", "payment_id", "line_ref", "amount_minor", "currency", "reason_code",
                   "action", "priority", "detail", "updated_at", "closed_at", "closed_note",
                   "last_run_pk", "due_on", "business_date", "resolution", "resolved_by",
                   "resolved_at", "proposal_pk")


async def update_cases(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        stmt = update(recon_cases).where(recon_cases.c.pk == bindparam("b_pk")).values(
            {c: bindparam(f"b_{c}") for c in _CASE_UPDATABLE})
        await conn.execute(stmt, [{"b_pk": r["pk"], **{f"b_{c}": r[c] for c in _CASE_UPDATABLE}}
                                  for r in rows])


async def close_cleared(conn: AsyncConnection, rail: str, *, replaced: Sequence[int],
                        run_pk: int, note: str, now: datetime, apply: bool = True) -> int:
    """Close the open cases this run no longer finds: those last found by a run it replaces
    (every earlier run of its rail and date, as ``runs_of``), and missing_on_statement cases
    of payments this run found on the statement; how many.

    With ``apply`` false, only count them: a run that does not take its statement at its
    word closes none, and says how many it would have.
    """
    found = select(recon_items.c.subject).where(recon_items.c.run_pk == run_pk, _LINE_ITEM,
                                                recon_items.c.payment_pk.is_not(None))
    gone = [recon_cases.c.kind.in_(["missing_on_statement"]),
            recon_cases.c.last_run_pk != run_pk, recon_cases.c.subject.in_(found)]
    if replaced:
        gone = [or_(recon_cases.c.last_run_pk.in_(list(replaced)), and_(*gone))]
    where = [recon_cases.c.rail == rail, recon_cases.c.state == "open", *gone]
    if not apply:
        q = select(func.count()).select_from(recon_cases).where(*where)
        return int((await conn.execute(q)).scalar_one())
    res = await conn.execute(update(recon_cases).where(*where).values(
        state="closed", closed_at=now, closed_note=note, updated_at=now))
    return res.rowcount or 0


async def cases_page(conn: AsyncConnection, *, state: str | None, kind: str | None,
                     rail: str | None, before: int | None, limit: int) -> list[RowMapping]:
    """Cases, newest first, below pk ``before``."""
    q = select(recon_cases).order_by(recon_cases.c.pk.desc()).limit(limit)
    for col, value in (("state", state), ("kind", kind), ("rail", rail)):
        if value is not None:
            q = q.where(recon_cases.c[col] == value)
    if before is not None:
        q = q.where(recon_cases.c.pk < before)
    return list((await conn.execute(q)).mappings())


async def case_by_pk(conn: AsyncConnection, pk: int, *,
                     lock: bool = False) -> RowMapping | None:
    """One case; ``lock`` takes its row lock (PostgreSQL) until the transaction ends."""
    q = select(recon_cases).where(recon_cases.c.pk == pk)
    if lock:
        q = q.with_for_update()
    return (await conn.execute(q)).mappings().first()


async def resolve_case(conn: AsyncConnection, pk: int, *, resolution: str, by: str,
                       note: str, proposal_pk: int, now: datetime) -> bool:
    """Close an open case as ops resolved it; False if it is no longer open."""
    res = await conn.execute(update(recon_cases).where(
        recon_cases.c.pk == pk, recon_cases.c.state == "open").values(
        state="closed", closed_at=now, closed_note=note, updated_at=now,
        resolution=resolution, resolved_by=by, resolved_at=now, proposal_pk=proposal_pk))
    return bool(res.rowcount)


async def newest_runs(conn: AsyncConnection, rails: Sequence[str]) -> list[RowMapping]:
    """The newest run of each of ``rails`` (one index lookup per rail)."""
    out = []
    for rail in rails:
        q = (select(recon_runs.c.rail, recon_runs.c.verdict, recon_runs.c.summary)
             .where(recon_runs.c.rail == rail)
             .order_by(recon_runs.c.business_date.desc(), recon_runs.c.pk.desc()).limit(1))
        row = (await conn.execute(q)).mappings().first()
        if row is not None:
            out.append(row)
    return out


async def count_items(conn: AsyncConnection, run_pk: int) -> int:
    q = select(func.count()).select_from(recon_items).where(recon_items.c.run_pk == run_pk)
    return int((await conn.execute(q)).scalar_one())
