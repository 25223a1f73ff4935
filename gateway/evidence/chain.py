"""The evidence log's hash chain: altering or deleting a stored record is detectable.

Why chain *after* commit: chaining inside intake would make every intake transaction read and
write the chain head, serialising all intake across processes on one row. Instead the chainer
(a job in ``serve``/``dispatch``) appends committed records to the chain in the order it finds
them, one chainer at a time (a PostgreSQL advisory lock; SQLite's write lock). The chain order
is therefore commit order as observed, not id order. A record is chained seconds after its
commit; ``gateway audit verify`` reports records older than the settle window that are still
unchained, so a record cannot hide by never being chained.

Each chain entry stores the record's own digest (over its immutable columns, with the exact wire
bytes hashed in) and ``chain = sha256(previous chain | table | pk | record digest)``. Verify
recomputes both for every entry: a flipped byte in a record breaks its digest; a deleted record
leaves an entry pointing at nothing; a deleted or edited entry breaks the links after it. What
a chain cannot show on its own is the loss of its newest entries together with their records:
``gateway audit head`` prints the head so operators can anchor it elsewhere (a ticket, a log).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, exists, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.clock import Clock, utcnow
from gateway.storage.tables import (
    admin_audit,
    delivery_receipts,
    evidence_chain,
    messages,
    partner_batches,
    recon_runs,
    recon_statements,
    statement_blobs,
)
from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["ChainHead", "ChainLag", "VerifyReport", "chain_head", "chain_lag", "chain_pending",
           "verify_chain"]

GENESIS = "0" * 64
_LOCK_ID = 7_400_211  # advisory lock key of the chainer
# How far behind the newest chained record the chainer looks for late commits. Intake
# transactions last milliseconds, so a commit that far behind would be a transaction that
# stayed open through 100,000 others; the periodic full sweep catches even that.
_LOOKBACK = 100_000


def _sha(data: bytes | None) -> str:
    return hashlib.sha256(data).hexdigest() if data is not None else ""


def _ts(value: datetime | None) -> str:
    return value.isoformat(timespec="microseconds") if value is not None else ""


def _message_digest(r: Any) -> str:
    fields = [
        "messages", str(r.pk), r.direction, r.partner_id, r.message_id, r.sender, r.recipient,
        r.type, r.correlation_id or "", _ts(r.sent_at), _ts(r.received_at), _sha(r.wire),
        r.wire_media_type, _sha(r.canonical), r.body_sha256, r.signature, r.kid,
        _sha(r.receipt), r.receipt_signature or "",
    ]
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()


def _receipt_digest(r: Any) -> str:
    fields = ["delivery_receipts", str(r.pk), str(r.message_pk), _ts(r.received_at),
              _sha(r.body), r.signature, r.kid]
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()


def _batch_digest(r: Any) -> str:
    fields = ["partner_batches", str(r.pk), r.partner_id, _ts(r.received_at), _sha(r.body),
              r.body_sha256, r.signature, r.kid]
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()


def _statement_digest(r: Any) -> str:
    # The bytes live in statement_blobs (chunks); verify recomputes their sha256 as well.
    fields = ["recon_statements", str(r.pk), r.rail, r.sha256, str(r.size), str(r.chunks),
              r.source, _ts(r.received_at)]
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()


def _run_digest(r: Any) -> str:
    # superseded_by_pk is left out: it is set later, and the superseding run's own manifest
    # names what it supersedes.
    fields = ["recon_runs", str(r.pk), r.run_id, r.run_key, r.rail, r.business_date.isoformat(),
              r.rule_version, str(r.statement_pk or ""), r.verdict, str(r.supersedes_pk or ""),
              _sha(r.accounts.encode()), _sha(r.summary.encode()), _sha(r.manifest.encode()),
              r.manifest_sha256, str(r._mapping["items"]), _ts(r.started_at), _ts(r.finished_at)]
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()


def _admin_audit_digest(r: Any) -> str:
    fields = ["admin_audit", str(r.pk), _ts(r.at), r.actor, r.issuer, r.roles, r.action,
              r.method, r.path, r.targets, r.client_ip, r.reason or "", r.outcome,
              str(r.status), r.detail or "", "1" if r.unmasked else "0",
              str(r.proposal_pk or "")]
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()


_RECORDS: dict[str, tuple[Table, Callable[[Any], str]]] = {
    "messages": (messages, _message_digest),
    "delivery_receipts": (delivery_receipts, _receipt_digest),
    # A batch's exact bytes and the signature over them: the proof behind its lines' rows.
    "partner_batches": (partner_batches, _batch_digest),
    # A rail statement as received, and each reconciliation run's manifest (inputs' and
    # outputs' hashes, rules, verdict, counts): reconciliation's evidence.
    "recon_statements": (recon_statements, _statement_digest),
    "recon_runs": (recon_runs, _run_digest),
    # Every admin request (gateway.admin.audit): who did or read what, from where, and why.
    "admin_audit": (admin_audit, _admin_audit_digest),
}
# The column holding a record's time, where it is not ``received_at`` (for the settle window).
_TIME_COLUMNS = {"recon_runs": "finished_at", "admin_audit": "at"}


async def _statement_bytes_sha256(conn: AsyncConnection, statement_pk: int) -> str:
    """sha256 of a stored statement's chunks, read one chunk at a time."""
    h, seq = hashlib.sha256(), -1
    while True:
        row = (await conn.execute(
            select(statement_blobs.c.seq, statement_blobs.c.data)
            .where(statement_blobs.c.statement_pk == statement_pk,
                   statement_blobs.c.seq > seq)
            .order_by(statement_blobs.c.seq).limit(1))).first()
        if row is None:
            return h.hexdigest()
        h.update(row.data)
        seq = row.seq


def _link(prev: str, table: str, pk: int, digest: str) -> str:
    return hashlib.sha256(f"{prev}|{table}|{pk}|{digest}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainHead:
    seq: int
    chain_sha256: str


async def chain_head(conn: AsyncConnection) -> ChainHead:
    row = (await conn.execute(
        select(evidence_chain.c.seq, evidence_chain.c.chain_sha256)
        .order_by(evidence_chain.c.seq.desc()).limit(1)
    )).first()
    return ChainHead(row.seq, row.chain_sha256) if row else ChainHead(0, GENESIS)


@dataclass(frozen=True, slots=True)
class ChainLag:
    records: int  # committed records beyond the newest chained one of their table
    oldest: datetime | None  # when the oldest of them was received


async def chain_lag(conn: AsyncConnection) -> ChainLag:
    """How far the chain is behind, cheaply: per record table, the rows past its newest chained
    pk (one index lookup and one pk range). A late commit below that pk is not counted here
    (the chainer's lookback and ``audit verify`` find it)."""
    records, oldest = 0, None
    for name, (table, _digest) in _RECORDS.items():
        top = (await conn.execute(
            select(func.max(evidence_chain.c.record_pk))
            .where(evidence_chain.c.record_table == name))).scalar() or 0
        n, first = (await conn.execute(
            select(func.count(), func.min(table.c.received_at)).where(table.c.pk > top))).one()
        records += n
        if first is not None and (oldest is None or first < oldest):
            oldest = first
    return ChainLag(records, oldest)


async def chain_pending(
    uow_factory: UnitOfWorkFactory, *, batch: int = 1000, full_sweep: bool = False,
    clock: Clock = utcnow,
) -> int:
    """Append committed, unchained evidence records to the chain; return how many."""
    async with uow_factory() as uow:
        conn = uow.conn
        if conn.dialect.name == "postgresql":
            got = (await conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                      {"k": _LOCK_ID})).scalar()
            if not got:
                return 0  # another process is chaining right now
        head = await chain_head(conn)
        seq, prev = head.seq, head.chain_sha256
        now = clock()
        rows_out: list[dict[str, Any]] = []
        for name, (table, digest) in _RECORDS.items():
            floor = 0
            if not full_sweep:
                top = (await conn.execute(
                    select(func.max(evidence_chain.c.record_pk))
                    .where(evidence_chain.c.record_table == name)
                )).scalar()
                floor = max(0, (top or 0) - _LOOKBACK)
            chained = exists().where(and_(evidence_chain.c.record_table == name,
                                          evidence_chain.c.record_pk == table.c.pk))
            rows = (await conn.execute(
                select(table).where(table.c.pk > floor, ~chained)
                .order_by(table.c.pk).limit(batch)
            )).all()
            for r in rows:
                seq += 1
                d = digest(r)
                prev = _link(prev, name, r.pk, d)
                rows_out.append({"seq": seq, "record_table": name, "record_pk": r.pk,
                                 "record_sha256": d, "chain_sha256": prev, "chained_at": now})
        if rows_out:
            await conn.execute(insert(evidence_chain), rows_out)
        await uow.commit()
        return len(rows_out)


@dataclass
class VerifyReport:
    checked: int = 0
    head: ChainHead | None = None
    broken: str | None = None  # the first problem found, naming the record
    unchained: int = 0  # records older than the settle window and not in the chain

    @property
    def ok(self) -> bool:
        return self.broken is None and self.unchained == 0


async def _entries(conn: AsyncConnection, page: int) -> AsyncIterator[Any]:
    last = 0
    while True:
        rows = (await conn.execute(
            select(evidence_chain).where(evidence_chain.c.seq > last)
            .order_by(evidence_chain.c.seq).limit(page)
        )).all()
        if not rows:
            return
        for r in rows:
            yield r
        last = rows[-1].seq


def _name(table: str, r: Any) -> str:
    if table == "messages":
        return f"messages pk {r.pk} (message {r.message_id} from {r.sender})"
    return f"{table} pk {r.pk}"


async def verify_chain(
    uow_factory: UnitOfWorkFactory, *, settle: timedelta = timedelta(minutes=5), page: int = 1000,
    clock: Clock = utcnow,
) -> VerifyReport:
    """Recompute the whole chain and every chained record; stop at the first break."""
    report = VerifyReport()
    prev, expected_seq = GENESIS, 1
    async with uow_factory(read_only=True) as reader:
        conn = reader.conn
        async for e in _entries(conn, page):
            where = f"chain entry seq {e.seq} ({e.record_table} pk {e.record_pk})"
            if e.seq != expected_seq:
                report.broken = f"chain entries {expected_seq}..{e.seq - 1} are missing"
                return report
            if e.record_table not in _RECORDS:
                report.broken = f"{where}: unknown record table"
                return report
            table, digest = _RECORDS[e.record_table]
            rec = (await conn.execute(select(table).where(table.c.pk == e.record_pk))).first()
            if rec is None:
                report.broken = f"{where}: the record was deleted"
                return report
            if digest(rec) != e.record_sha256:
                report.broken = f"{_name(e.record_table, rec)}: the record was altered"
                return report
            if e.record_table == "recon_statements" and (
                    await _statement_bytes_sha256(conn, rec.pk) != rec.sha256):
                report.broken = (f"recon_statements pk {rec.pk} ({rec.source}): the stored "
                                 "statement bytes were altered")
                return report
            if _link(prev, e.record_table, e.record_pk, e.record_sha256) != e.chain_sha256:
                report.broken = f"{where}: the chain link does not match (entry altered)"
                return report
            prev, expected_seq = e.chain_sha256, expected_seq + 1
            report.checked += 1
        report.head = ChainHead(expected_seq - 1, prev)
        cutoff = clock() - settle
        for name, (table, _d) in _RECORDS.items():
            chained = exists().where(and_(evidence_chain.c.record_table == name,
                                          evidence_chain.c.record_pk == table.c.pk))
            time_col = table.c[_TIME_COLUMNS.get(name, "received_at")]
            report.unchained += (await conn.execute(
                select(func.count()).select_from(table).where(~chained, time_col < cutoff)
            )).scalar_one()
    return report
