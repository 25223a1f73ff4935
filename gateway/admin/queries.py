"""The admin API's SQL (Core, inside the caller's unit of work; never commits).

Lists are read newest first by primary key, the cursor being the last pk returned: a page
reads ``pk < cursor``. A pk is drawn at insert, not at commit, but a row that commits after
a page was read and has a pk below that page's cursor was not committed when the listing
began; so every row committed before the first page is read appears exactly once, and rows
committed later appear at the top on the next first page. A list with a time range is read by
(time, pk) instead, newest first, so that the range is a slice of the (time, pk) index rather
than a filter over every newer row; the cursor is still the last pk (its time is looked up by
pk), and the argument above holds for any order of immutable columns. The audit export,
which follows the trail forwards for off-site copies, reads in (inserting transaction, pk)
order below the visibility horizon on PostgreSQL instead (``gateway.storage.commit_order``),
so a record still committing, and any after it, come on the next read rather than being
skipped.

Every filter has an index ending in its list's order (migration 0010_admin_indexes), and no
query here has an OR, a function of a column, an OFFSET or a count over a whole table:
tests/integration/admin/test_query_plans.py checks the plans, ``python -m bench.admin`` the
latency at 10 million rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, func, insert, or_, select, tuple_, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.admin.proposals import LAPSING, Proposal, ProposalState
from gateway.errors import InvalidMessageError
from gateway.storage.commit_order import visible_horizon
from gateway.storage.keyset import newest_first
from gateway.storage.tables import (
    admin_audit,
    admin_proposals,
    delivery_receipts,
    message_state,
    messages,
    outbox,
    payments,
)

__all__ = [
    "AuditFilter", "MessageFilter", "audit_after", "audit_page", "before_cursor",
    "export_cursor", "insert_proposal", "message_by_pk", "messages_page", "partner_stats",
    "proposal_by_pk", "proposals_page", "receipts_of", "update_proposal",
]


def before_cursor(cursor: str | None) -> int | None:
    """The pk a list cursor stands for.

    Raises:
        InvalidMessageError: schema_violation, not a cursor a list returned.
    """
    if cursor is None or cursor == "":
        return None
    if not cursor.isdigit() or len(cursor) > 18 or int(cursor) < 1:
        raise InvalidMessageError("schema_violation",
                                  f"cursor {cursor[:40]!r} is not a cursor this list returned")
    return int(cursor)


def export_cursor(cursor: str | None) -> tuple[int, int]:
    """(transaction, pk) of an export cursor; a plain pk has transaction 0."""
    if cursor is None or cursor == "":
        return 0, 0
    head, dot, tail = cursor.partition(".")
    parts = [head, tail] if dot else ["0", head]
    if not all(p.isdigit() and len(p) <= 18 for p in parts):
        raise InvalidMessageError("schema_violation",
                                  f"after {cursor[:40]!r} is not a cursor this export returned")
    return int(parts[0]), int(parts[1])


# -- messages ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MessageFilter:
    partner_id: str | None = None
    type: str | None = None
    direction: str | None = None
    state: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None
    correlation_id: str | None = None
    payment_id: str | None = None


_SUMMARY = (messages.c.pk, messages.c.direction, messages.c.partner_id, messages.c.message_id,
            messages.c.sender, messages.c.recipient, messages.c.type, messages.c.correlation_id,
            messages.c.sent_at, messages.c.received_at, messages.c.kid,
            message_state.c.state, message_state.c.detail.label("state_detail"),
            message_state.c.updated_at.label("state_at"))


async def messages_page(conn: AsyncConnection, f: MessageFilter, *, before: int | None,
                        limit: int) -> list[RowMapping]:
    """Messages matching ``f``, newest first below pk ``before`` (no wire bytes)."""
    on = message_state.c.message_pk == messages.c.pk
    # With a state filter only rows that have one match: an inner join, which the planner
    # can drive from the (state, message_pk) index.
    joined = (messages.join(message_state, on) if f.state is not None
              else messages.outerjoin(message_state, on))
    q = select(*_SUMMARY).select_from(joined).limit(limit)
    for column, value in ((messages.c.partner_id, f.partner_id), (messages.c.type, f.type),
                          (messages.c.direction, f.direction),
                          (messages.c.correlation_id, f.correlation_id),
                          (message_state.c.state, f.state)):
        if value is not None:
            q = q.where(column == value)
    if f.received_from is not None:
        q = q.where(messages.c.received_at >= f.received_from)
    if f.received_to is not None:
        q = q.where(messages.c.received_at < f.received_to)
    if f.payment_id is not None:
        # A payment's messages are its case's thread (correlation id = claim or pension ref)
        # with its partner. The payment is read first so the thread is an IN list on the
        # (correlation_id, pk) index, not an OR of subqueries the planner cannot index.
        pay = (await conn.execute(
            select(payments.c.partner_id, payments.c.claim_ref, payments.c.pension_ref)
            .where(payments.c.payment_id == f.payment_id))).first()
        threads = [t for t in (pay.claim_ref, pay.pension_ref) if t] if pay else []
        if pay is None or pay.partner_id is None or not threads:
            return []
        q = q.where(messages.c.partner_id == pay.partner_id,
                    messages.c.correlation_id.in_(threads))
    timed = f.received_from is not None or f.received_to is not None
    if f.state is not None and before is not None and not timed:
        # The same bound on the joined key: the planner does not carry an inequality across
        # the join, and the (state, message_pk) index must start at the cursor, not the top.
        q = q.where(message_state.c.message_pk < before)
    q = newest_first(q, messages.c.pk, messages.c.received_at, before=before, timed=timed)
    return list((await conn.execute(q)).mappings())


async def message_by_pk(conn: AsyncConnection, pk: int) -> RowMapping | None:
    q = (select(messages, message_state.c.state,
                message_state.c.detail.label("state_detail"),
                message_state.c.updated_at.label("state_at"))
         .select_from(messages.outerjoin(message_state,
                                         message_state.c.message_pk == messages.c.pk))
         .where(messages.c.pk == pk))
    row: RowMapping | None = (await conn.execute(q)).mappings().first()
    return row


async def receipts_of(conn: AsyncConnection, message_pk: int) -> list[RowMapping]:
    q = (select(delivery_receipts).where(delivery_receipts.c.message_pk == message_pk)
         .order_by(delivery_receipts.c.pk))
    return list((await conn.execute(q)).mappings())


# -- partners ------------------------------------------------------------------------------------

async def partner_stats(conn: AsyncConnection,
                        partner_ids: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """Per partner: its last message in, last delivery receipt, and its outbox work.

    Every figure is read off an index: the newest inbound row and the newest delivered
    outbound row by the (partner, direction, pk) index, the work counts off the partial index
    of unfinished and dead tasks. "Last delivered" is the receipt of the partner's newest
    message that has one (the walk passes over the newest undelivered messages only), not a
    maximum over all its receipts: an aggregate over every receipt grows with the table.
    """
    out: dict[str, dict[str, Any]] = {}
    for pid in partner_ids:
        at = (await conn.execute(
            select(messages.c.received_at)
            .where(messages.c.partner_id == pid, messages.c.direction == "in")
            .order_by(messages.c.pk.desc()).limit(1))).scalar()
        if at is not None:
            out.setdefault(pid, {})["last_inbound_at"] = at
        delivered = (await conn.execute(
            select(delivery_receipts.c.received_at)
            .select_from(messages.join(delivery_receipts,
                                       delivery_receipts.c.message_pk == messages.c.pk))
            .where(messages.c.partner_id == pid, messages.c.direction == "out")
            .order_by(messages.c.pk.desc()).limit(1))).scalar()
        if delivered is not None:
            out.setdefault(pid, {})["last_delivered_at"] = delivered
    unfinished = outbox.c.state.in_(["pending", "leased"])
    work = (await conn.execute(
        select(outbox.c.destination,
               func.count().filter(unfinished).label("queued"),
               func.count().filter(unfinished, outbox.c.attempts > 0).label("failing"),
               func.count().filter(outbox.c.state == "dead").label("dead"))
        .where(outbox.c.state.in_(["pending", "leased", "dead"]))
        .group_by(outbox.c.destination))).mappings().all()
    for w in work:
        out.setdefault(w.destination, {}).update(queued=w.queued, failing=w.failing,
                                                 dead=w.dead)
    return out


# -- proposals -----------------------------------------------------------------------------------

def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _values(p: Proposal, now: datetime) -> dict[str, Any]:
    return dict(action=p.action, state=p.state.value, maker=p.maker,
                editors=_dumps(list(p.editors)), reason=p.reason, params=_dumps(p.params),
                targets=_dumps(list(p.targets)), target_count=p.target_count,
                preview=_dumps(p.preview), created_at=p.created_at, updated_at=now,
                expires_at=p.expires_at, decided_by=p.decided_by, decided_at=p.decided_at,
                decision_note=p.decision_note,
                result=_dumps(p.result) if p.result is not None else None)


def _proposal(r: RowMapping) -> Proposal:
    return Proposal(action=r.action, maker=r.maker, reason=r.reason,
                    params=orjson.loads(r.params), targets=tuple(orjson.loads(r.targets)),
                    preview=orjson.loads(r.preview), created_at=r.created_at,
                    expires_at=r.expires_at, state=ProposalState(r.state),
                    editors=tuple(orjson.loads(r.editors)), decided_by=r.decided_by,
                    decided_at=r.decided_at, decision_note=r.decision_note,
                    result=orjson.loads(r.result) if r.result else None, pk=r.pk)


async def insert_proposal(conn: AsyncConnection, p: Proposal, now: datetime) -> int:
    result = await conn.execute(insert(admin_proposals).values(**_values(p, now))
                                .returning(admin_proposals.c.pk))
    return int(result.scalar_one())


async def update_proposal(conn: AsyncConnection, p: Proposal, now: datetime) -> None:
    assert p.pk is not None
    await conn.execute(update(admin_proposals).where(admin_proposals.c.pk == p.pk)
                       .values(**_values(p, now)))


async def proposal_by_pk(conn: AsyncConnection, pk: int, *,
                         lock: bool = False) -> Proposal | None:
    q = select(admin_proposals).where(admin_proposals.c.pk == pk)
    if lock:
        q = q.with_for_update()
    row = (await conn.execute(q)).mappings().first()
    return _proposal(row) if row is not None else None


async def proposals_page(conn: AsyncConnection, *, state: str | None, action: str | None,
                         before: int | None, limit: int, now: datetime) -> list[Proposal]:
    """Proposals newest first; ``state`` as each stands at ``now`` (a lapsed pending one,
    still stored pending, is expired)."""
    q = select(admin_proposals).order_by(admin_proposals.c.pk.desc()).limit(limit)
    stored, lapsing = admin_proposals.c.state, [s.value for s in LAPSING]
    if state == ProposalState.expired.value:
        q = q.where(or_(stored == state, and_(stored.in_(lapsing),
                                              admin_proposals.c.expires_at <= now)))
    elif state in lapsing:
        q = q.where(stored == state, admin_proposals.c.expires_at > now)
    elif state is not None:
        q = q.where(stored == state)
    if action is not None:
        q = q.where(admin_proposals.c.action == action)
    if before is not None:
        q = q.where(admin_proposals.c.pk < before)
    return [_proposal(r) for r in (await conn.execute(q)).mappings()]


# -- audit ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    outcome: str | None = None
    at_from: datetime | None = None
    at_to: datetime | None = None


def _audit_where(q: Any, f: AuditFilter) -> Any:
    for column, value in ((admin_audit.c.actor, f.actor), (admin_audit.c.action, f.action),
                          (admin_audit.c.outcome, f.outcome)):
        if value is not None:
            q = q.where(column == value)
    if f.at_from is not None:
        q = q.where(admin_audit.c.at >= f.at_from)
    if f.at_to is not None:
        q = q.where(admin_audit.c.at < f.at_to)
    return q


async def audit_page(conn: AsyncConnection, f: AuditFilter, *, before: int | None,
                     limit: int) -> list[RowMapping]:
    q = newest_first(_audit_where(select(admin_audit).limit(limit), f), admin_audit.c.pk,
                     admin_audit.c.at, before=before,
                     timed=f.at_from is not None or f.at_to is not None)
    return list((await conn.execute(q)).mappings())


async def audit_after(conn: AsyncConnection, f: AuditFilter, *, after: tuple[int, int],
                      limit: int) -> tuple[list[RowMapping], str | None]:
    """Audit records in commit-safe order after ``after``, with the cursor of the last."""
    q = _audit_where(select(admin_audit).limit(limit), f)
    pg = conn.dialect.name == "postgresql"
    if pg:
        q = (q.where(tuple_(admin_audit.c.xact_id, admin_audit.c.pk) > tuple_(*after),
                     admin_audit.c.xact_id < visible_horizon())
             .order_by(admin_audit.c.xact_id, admin_audit.c.pk))
    else:
        q = q.where(admin_audit.c.pk > after[1]).order_by(admin_audit.c.pk)
    rows: Sequence[RowMapping] = (await conn.execute(q)).mappings().all()
    if not rows:
        return [], None
    last = rows[-1]
    return list(rows), f"{last.xact_id}.{last.pk}" if pg else str(last.pk)
