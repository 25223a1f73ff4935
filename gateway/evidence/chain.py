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
a chain cannot show on its own is an insider who rewrites a record *and* every later link, or
the loss of its newest entries with their records: signed checkpoints of the head, kept off the
database (``gateway.evidence.checkpoints``), close both.

Why the bytes are hashed *in the database*: the digest needs the sha256 of each wire, receipt
and batch body, and those can be 1 MiB each. Hashing them in the query (PostgreSQL's
``sha256(bytea)``; on SQLite a function registered on the connection, which reads one value at
a time) means only 64 hex characters per column cross the wire, so the chainer and verify use
the same memory whatever the record size, and verify still re-hashes the stored bytes: a flipped
byte is found even though the row's own ``body_sha256`` was not touched. On PostgreSQL the whole
digest is one SQL expression (``ChainedTable.sql_digest``, the same rule as ``digest``), so a
record costs the gateway one 64-character string. ``trust_stored_hashes``
is the faster, weaker verify that takes a stored ``body_sha256`` as the wire's hash (docs/
evidence.md says what each proves).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter, deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.clock import Clock, utcnow
from gateway.errors import AuthError
from gateway.evidence import pensions as pension_evidence
from gateway.evidence.digest import ChainedTable, Signed, hash_expr
from gateway.evidence.payments import check_payments
from gateway.protocol.envelope import HUB_PARTY
from gateway.protocol.signing import KeyRing, verify_detached
from gateway.storage.tables import (
    admin_audit,
    delivery_receipts,
    evidence_chain,
    messages,
    partner_batches,
    payment_events,
    payments,
    pension_events,
    pension_schedules,
    recon_runs,
    recon_statements,
    statement_blobs,
)
from gateway.storage.uow import UnitOfWorkFactory

__all__ = [
    "CHAINED", "ChainHead", "ChainLag", "ChainedTable", "Signed", "TrustedPoint", "VerifyReport",
    "chain_head", "chain_lag", "chain_pending", "verify_chain",
]

GENESIS = "0" * 64
_LOCK_ID = 7_400_211  # advisory lock key of the chainer
# How far behind the newest chained record the chainer looks for late commits. Intake
# transactions last milliseconds, so a commit that far behind would be a transaction that
# stayed open through 100,000 others; the periodic full sweep catches even that.
_LOOKBACK = 100_000
# How many unsigned records a report of a rewritten range names (the rest are counted).
_NAMED = 5
# Records appended per transaction: one SELECT per table and one multi-row INSERT per batch;
# no wire bytes are loaded, so a batch costs a few MB whatever the record size.
BATCH = 5000


# ---- the chained tables: one entry per table ------------------------------------------------

def _message_name(r: Any) -> str:
    return f"messages pk {r.pk} (message {r.message_id} from {r.sender})"


def _message_signer(r: Any) -> str:
    return HUB_PARTY if r.direction == "out" else str(r.sender)


def _payment_name(r: Any) -> str:
    return f"payments pk {r.pk} (payment {r.payment_id})"


def _payment_event_name(r: Any) -> str:
    return f"payment_events pk {r.pk} (payment pk {r.payment_pk}, {r.cause})"


def _schedule_name(r: Any) -> str:
    return f"pension_schedules pk {r.pk} (pension {r.pension_ref})"


def _pension_event_name(r: Any) -> str:
    return f"pension_events pk {r.pk} (schedule pk {r.schedule_pk}, {r.cause})"


# The chained set, explicit: a new kind of evidence is one entry here, never registered at
# import from elsewhere. The order is the order the chainer appends a batch in. Changing an
# entry's fields changes its digests: existing chains then fail verify, so add, never edit.
CHAINED: dict[str, ChainedTable] = {
    "messages": ChainedTable(
        messages,
        ("direction", "partner_id", "message_id", "sender", "recipient", "type",
         "correlation_id", "sent_at", "received_at", "wire", "wire_media_type", "canonical",
         "body_sha256", "signature", "kid", "receipt", "receipt_signature"),
        stored_hashes={"wire": "body_sha256"},
        signed=(Signed("partner signature", "wire", "signature", _message_signer),
                Signed("receipt signature", "receipt", "receipt_signature",
                       lambda r: HUB_PARTY)),
        name=_message_name,
    ),
    "delivery_receipts": ChainedTable(
        delivery_receipts,
        ("message_pk", "received_at", "body", "signature", "kid"),
        # Whose receipt it is lives on the message it acknowledges; the key id names the party.
        signed=(Signed("partner signature", "body", "signature", lambda r: ""),),
    ),
    # A batch's exact bytes and the signature over them: the proof behind its lines' rows.
    "partner_batches": ChainedTable(
        partner_batches,
        ("partner_id", "received_at", "body", "body_sha256", "signature", "kid"),
        stored_hashes={"body": "body_sha256"},
        signed=(Signed("partner signature", "body", "signature", lambda r: str(r.partner_id)),),
    ),
    # A rail statement as received (verify also re-hashes its stored chunks), and each
    # reconciliation run's manifest (inputs' and outputs' hashes, rules, verdict, counts).
    # superseded_by_pk is left out: it is set later, and the superseding run's own manifest
    # names what it supersedes.
    "recon_statements": ChainedTable(
        recon_statements, ("rail", "sha256", "size", "chunks", "source", "received_at"),
    ),
    "recon_runs": ChainedTable(
        recon_runs,
        ("run_id", "run_key", "rail", "business_date", "rule_version", "statement_pk",
         "verdict", "supersedes_pk", "accounts", "summary", "manifest", "manifest_sha256",
         "started_at", "finished_at"),
        time_column="finished_at",
    ),
    # Every admin request (gateway.admin.audit): who did or read what, from where, and why.
    "admin_audit": ChainedTable(
        admin_audit,
        ("at", "actor", "issuer", "roles", "action", "method", "path", "targets", "client_ip",
         "reason", "outcome", "status", "detail", "unmasked", "proposal_pk"),
        time_column="at",
    ),
    # A payment as instructed: who is paid, how much, in what currency, at what rate. Only the
    # columns no code path updates (gateway.evidence.payments.CHANGING lists the others:
    # state, the payout account, the rail's reference...), so a chained payment still moves
    # through its states; its events carry every change of those, with its cause, and each
    # change of the payout account or the rail's reference is named in the event's detail.
    "payments": ChainedTable(
        payments,
        ("payment_id", "idempotency_key", "request_sha256", "rail", "partner_id", "benefit",
         "claim_ref", "socso_claim_no", "pension_ref", "period", "beneficiary_name",
         "beneficiary_id", "amount_minor", "currency", "base_minor", "base_currency",
         "fx_rate", "fx_source", "fx_at", "fx_exact", "fx_rounding_minor", "created_at"),
        time_column="created_at",
        name=_payment_name,
    ),
    # Every transition of a payment and its cause; never updated. Since migration 0016 each
    # also records the digest of the payment's changing columns after it
    # (gateway.evidence.payments), which verify compares with the payment as it is.
    "payment_events": ChainedTable(
        payment_events,
        ("payment_pk", "from_state", "to_state", "cause", "detail", "at"),
        time_column="at",
        name=_payment_event_name,
        added=("payment_sha256",),
    ),
    # A pension schedule as awarded: the columns no code path updates (the others,
    # gateway.evidence.pensions.CHANGING, change with its events), and each of its events
    # whole, which since migration 0017 records the digest of the schedule after it.
    "pension_schedules": ChainedTable(
        pension_schedules,
        ("pension_ref", "request_sha256", "partner_id", "benefit", "beneficiary_name",
         "beneficiary_id", "rail", "monthly_minor", "currency", "start_on", "end_on",
         "created_at", "claim_ref"),
        time_column="created_at",
        name=_schedule_name,
    ),
    "pension_events": ChainedTable(
        pension_events,
        ("schedule_pk", "from_state", "to_state", "cause", "detail", "at"),
        time_column="at",
        name=_pension_event_name,
        added=("schedule_sha256",),
    ),
}


async def _statement_bytes_problem(conn: AsyncConnection, statement_pk: int) -> str | None:
    """Name a stored statement whose chunks no longer hash to its recorded sha256."""
    row = (await conn.execute(select(recon_statements.c.sha256, recon_statements.c.source)
                              .where(recon_statements.c.pk == statement_pk))).first()
    if row is None or await _statement_bytes_sha256(conn, statement_pk) == row.sha256:
        return None  # a deleted row is the digest check's to report
    return (f"recon_statements pk {statement_pk} ({row.source}): the stored statement bytes "
            "were altered")


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


# ---- hashing in the database ----------------------------------------------------------------

def _record_columns(conn: AsyncConnection, spec: ChainedTable, *,
                    trust_stored: bool = False) -> list[ColumnElement[Any]]:
    """pk and the record's digest: one expression on PostgreSQL; elsewhere the fields, with
    bytes hashed in the database, for ``spec.digest``."""
    t = spec.table
    if conn.dialect.name == "postgresql":
        return [t.c.pk, spec.sql_digest(trust_stored=trust_stored).label("_digest")]
    cols: list[ColumnElement[Any]] = [t.c.pk]
    for f, kind in spec.kinds():
        if kind != "bytes":
            cols.append(t.c[f])
            continue
        stored = spec.stored_hashes.get(f) if trust_stored else None
        expr = t.c[stored] if stored is not None else hash_expr(conn.dialect.name, t.c[f])
        cols.append(expr.label(f"{f}_sha"))
    cols.extend(t.c[f] for f in spec.added)
    return cols


def _digest_of(spec: ChainedTable, r: Any) -> str:
    d = getattr(r, "_digest", None)
    return d if isinstance(d, str) else spec.digest(r)


# ---- the chainer ----------------------------------------------------------------------------

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
    for name, spec in CHAINED.items():
        table = spec.table
        top = (await conn.execute(
            select(func.max(evidence_chain.c.record_pk))
            .where(evidence_chain.c.record_table == name))).scalar() or 0
        n, first = (await conn.execute(
            select(func.count(), func.min(table.c[spec.time_column]))
            .where(table.c.pk > top))).one()
        records += n
        if first is not None and (oldest is None or first < oldest):
            oldest = first
    return ChainLag(records, oldest)


async def chain_pending(
    uow_factory: UnitOfWorkFactory, *, batch: int = BATCH, full_sweep: bool = False,
    lookback: bool = True, clock: Clock = utcnow,
) -> int:
    """Append committed, unchained evidence records to the chain; return how many.

    Records above the newest chained pk of their table are new: they are read in pk order
    without any anti-join, so a call costs what it appends. Below it, only a late commit can
    be unchained (a transaction that took its pk before the chainer passed and committed
    after); ``lookback`` looks for those within ``_LOOKBACK`` pks, ``full_sweep`` in the whole
    table; both cost an anti-join over that range, so the job asks for them on a schedule,
    not on every call. At most ``batch`` records per table; the caller repeats while the
    result is non-zero.
    """
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
        for name, spec in CHAINED.items():
            t = spec.table
            top = (await conn.execute(
                select(func.max(evidence_chain.c.record_pk))
                .where(evidence_chain.c.record_table == name)
            )).scalar() or 0
            rows: list[Any] = []
            if top and (full_sweep or lookback):
                floor = 0 if full_sweep else max(0, top - _LOOKBACK)
                chained = exists().where(and_(evidence_chain.c.record_table == name,
                                              evidence_chain.c.record_pk == t.c.pk))
                rows = list((await conn.execute(
                    select(*_record_columns(conn, spec))
                    .where(t.c.pk > floor, t.c.pk <= top, ~chained)
                    .order_by(t.c.pk).limit(batch)
                )).all())
            if len(rows) < batch:
                rows += (await conn.execute(
                    select(*_record_columns(conn, spec)).where(t.c.pk > top)
                    .order_by(t.c.pk).limit(batch - len(rows))
                )).all()
            for r in rows:
                seq += 1
                d = _digest_of(spec, r)
                prev = _link(prev, name, r.pk, d)
                rows_out.append({"seq": seq, "record_table": name, "record_pk": r.pk,
                                 "record_sha256": d, "chain_sha256": prev, "chained_at": now})
        if rows_out:
            await conn.execute(insert(evidence_chain), rows_out)
        await uow.commit()
        return len(rows_out)


# ---- verify ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TrustedPoint:
    """A chain position known from outside the database (a verified signed checkpoint)."""

    seq: int
    chain_sha256: str
    label: str  # how a report names it, e.g. "checkpoint signed 2026-12-02T01:00:00Z"


@dataclass
class VerifyReport:
    checked: int = 0
    head: ChainHead | None = None
    broken: str | None = None  # the first problem found, naming the record
    unchained: int = 0  # records older than the settle window and not in the chain
    signatures_checked: int = 0
    unverifiable: int = 0  # signatures by a key the verifier does not hold
    first_unverifiable: str | None = None
    checkpoints_matched: int = 0
    tables: dict[str, int] = field(default_factory=dict)  # records checked, per table
    payments_compared: int = 0  # payments as they are, against their newest event's digest
    payments_uncompared: int = 0  # payments whose newest event predates that digest (0016)
    schedules_compared: int = 0  # pension schedules, likewise
    schedules_uncompared: int = 0  # schedules whose newest event predates that digest (0017)

    @property
    def ok(self) -> bool:
        return self.broken is None and self.unchained == 0


Entry = tuple[int, str, int, str, str, str | None]  # seq, table, pk, digests stored, recomputed


def _pg_page_query(lo: int, hi: int, trust_stored: bool) -> Select[Any]:
    """Entries ``lo < seq <= hi`` with each record's digest recomputed, in one query: each
    table joined on its primary key, the digest computed in the database (NULL: deleted)."""
    e = evidence_chain
    joined: Any = e
    digests = []
    for name, spec in CHAINED.items():
        t = spec.table
        joined = joined.outerjoin(t, and_(e.c.record_table == name, t.c.pk == e.c.record_pk))
        digests.append((and_(e.c.record_table == name, t.c.pk.is_not(None)),
                        spec.sql_digest(trust_stored=trust_stored)))
    return (select(e.c.seq, e.c.record_table, e.c.record_pk, e.c.record_sha256,
                   e.c.chain_sha256, case(*digests, else_=None))
            .select_from(joined).where(e.c.seq > lo, e.c.seq <= hi).order_by(e.c.seq))


async def _page(conn: AsyncConnection, lo: int, hi: int, trust_stored: bool) -> list[Entry]:
    if conn.dialect.name == "postgresql":
        rows = (await conn.execute(_pg_page_query(lo, hi, trust_stored))).all()
        return [tuple(r) for r in rows]
    rows = (await conn.execute(
        select(evidence_chain.c.seq, evidence_chain.c.record_table, evidence_chain.c.record_pk,
               evidence_chain.c.record_sha256, evidence_chain.c.chain_sha256)
        .where(evidence_chain.c.seq > lo, evidence_chain.c.seq <= hi)
        .order_by(evidence_chain.c.seq))).all()
    found: dict[int, str] = {}
    for name in {r.record_table for r in rows} & set(CHAINED):
        spec = CHAINED[name]
        t = spec.table
        q = (select(evidence_chain.c.seq, *_record_columns(conn, spec, trust_stored=trust_stored))
             .select_from(evidence_chain.join(t, t.c.pk == evidence_chain.c.record_pk))
             .where(evidence_chain.c.record_table == name, evidence_chain.c.seq > lo,
                    evidence_chain.c.seq <= hi))
        found.update({r.seq: _digest_of(spec, r) for r in (await conn.execute(q)).all()})
    return [(r.seq, r.record_table, r.record_pk, r.record_sha256, r.chain_sha256,
             found.get(r.seq)) for r in rows]


async def _pages(uow_factory: UnitOfWorkFactory, conn: AsyncConnection, head: int, page: int,
                 trust_stored: bool, window: int) -> AsyncIterator[list[Entry]]:
    """Seq ranges of ``page`` entries up to ``head``, in order. On PostgreSQL ``window`` pages
    are fetched ahead on their own connections, so the database recomputes digests (on every
    core it has) while this process checks links: memory is bounded by the window, not by
    the chain. Entries are append-only, so a page read in its own snapshot is the same page."""

    async def fetch(lo: int, hi: int) -> list[Entry]:
        async with uow_factory(read_only=True) as r:
            return await _page(r.conn, lo, hi, trust_stored)

    if conn.dialect.name != "postgresql":
        for lo in range(0, head, page):
            yield await _page(conn, lo, min(lo + page, head), trust_stored)
        return
    ahead: deque[asyncio.Task[list[Entry]]] = deque()
    next_lo = 0
    try:
        while next_lo < head or ahead:
            while len(ahead) < window and next_lo < head:
                ahead.append(asyncio.create_task(fetch(next_lo, min(next_lo + page, head))))
                next_lo += page
            yield await ahead.popleft()
    finally:
        for task in ahead:
            task.cancel()
        await asyncio.gather(*ahead, return_exceptions=True)


async def _describe(conn: AsyncConnection, record_table: str, pk: int) -> str:
    spec = CHAINED[record_table]
    row = (await conn.execute(select(spec.table).where(spec.table.c.pk == pk))).first()
    return spec.describe(record_table, row) if row is not None else f"{record_table} pk {pk}"


class _Signatures:
    """Checks the signatures of one page's records, a few records' bytes at a time."""

    def __init__(self, keys: KeyRing, report: VerifyReport) -> None:
        self.keys = keys
        self.report = report

    async def check(self, conn: AsyncConnection, spec: ChainedTable, record_table: str,
                    pks: list[int], chunk: int = 32) -> str | None:
        t = spec.table
        cols = {t.c.pk, *(t.c[f] for f, kind in spec.kinds() if kind != "bytes")}
        for s in spec.signed:
            cols |= {t.c[s.body], t.c[s.signature]}
        for i in range(0, len(pks), chunk):
            part = pks[i:i + chunk]
            rows = (await conn.execute(
                select(*cols).where(t.c.pk.in_(bindparam("pks", part, expanding=True)))
                .order_by(t.c.pk))).all()
            for r in rows:
                problem = self._row(spec, record_table, r)
                if problem is not None:
                    return problem
        return None

    def _row(self, spec: ChainedTable, record_table: str, r: Any) -> str | None:
        for s in spec.signed:
            body, signature = getattr(r, s.body), getattr(r, s.signature)
            if body is None and signature is None:
                continue
            self.report.signatures_checked += 1
            try:
                got = verify_detached(body or b"", signature, self.keys)
            except AuthError as exc:
                if exc.code == "unknown_key":
                    self.report.unverifiable += 1
                    if self.report.first_unverifiable is None:
                        self.report.first_unverifiable = (
                            f"{spec.describe(record_table, r)}: unverifiable {s.what} "
                            f"({exc.detail})")
                    continue
                return f"{spec.describe(record_table, r)}: the {s.what} does not verify"
            expected = s.signer(r)
            if expected and got.party != expected:
                return (f"{spec.describe(record_table, r)}: the {s.what} is by {got.party}, "
                        f"not {expected}")
        return None


async def verify_chain(
    uow_factory: UnitOfWorkFactory, *, settle: timedelta = timedelta(minutes=5),
    page: int = 5000, clock: Clock = utcnow, trust_stored_hashes: bool = False,
    keys: KeyRing | None = None, trusted: Sequence[TrustedPoint] = (),
    probe_keys: KeyRing | None = None, window: int = 3,
) -> VerifyReport:
    """Recompute the whole chain and every chained record; stop at the first break.

    ``keys``: also check every record's signatures with these public keys (a key the ring does
    not hold makes a signature "unverifiable", counted, not a break). ``trusted``: chain
    positions from verified signed checkpoints; a recomputed hash that differs at one is a
    rewrite of the stored history, which a chain that is consistent with itself cannot show;
    the record is then named by its signatures, checked with ``probe_keys`` (or ``keys``).
    """
    report = VerifyReport()
    points = {p.seq: p for p in trusted}
    last_good = 0
    prev, expected_seq = GENESIS, 1
    sigs = _Signatures(keys, report) if keys is not None else None
    async with uow_factory(read_only=True) as reader:
        conn = reader.conn
        head = await chain_head(conn)
        async for entries in _pages(uow_factory, conn, head.seq, page, trust_stored_hashes,
                                    window):
            # The hot loop: 50,000+ entries a second, so no work per entry beyond the checks.
            sha256 = hashlib.sha256
            for seq, table, pk, record_sha, chain_sha, digest in entries:
                if seq != expected_seq or digest != record_sha or sha256(
                        f"{prev}|{table}|{pk}|{record_sha}".encode()).hexdigest() != chain_sha:
                    report.checked = expected_seq - 1
                    report.broken = await _break(conn, expected_seq, seq, table, pk, digest,
                                                 record_sha, chain_sha, prev)
                    return report
                prev, expected_seq = chain_sha, expected_seq + 1
                point = points.get(seq)
                if point is not None:
                    if point.chain_sha256 != prev:
                        report.checked = seq - 1
                        report.broken = await _rewritten(conn, point, last_good,
                                                         probe_keys or keys)
                        return report
                    report.checkpoints_matched += 1
                    last_good = seq
            # A statement's bytes live in chunks beside its row: re-hash them (rare rows).
            for _seq, name, pk, *_ in entries:
                if name == "recon_statements":
                    problem = await _statement_bytes_problem(conn, pk)
                    if problem is not None:
                        report.broken = problem
                        return report
            report.checked = expected_seq - 1
            for name, n in Counter(e[1] for e in entries).items():
                report.tables[name] = report.tables.get(name, 0) + n
            if sigs is not None:
                for name in {e[1] for e in entries}:
                    pks = [e[2] for e in entries if e[1] == name]
                    problem = await sigs.check(conn, CHAINED[name], name, pks)
                    if problem is not None:
                        report.broken = problem
                        return report
        report.head = ChainHead(expected_seq - 1, prev)
        missing = [p for p in points.values() if p.seq > report.head.seq]
        if missing:
            p = min(missing, key=lambda x: x.seq)
            report.broken = (f"the chain ends at seq {report.head.seq}, before the {p.label} "
                             f"at seq {p.seq}: chained history was removed")
            return report
        cutoff = clock() - settle
        for name, spec in CHAINED.items():
            t = spec.table
            chained = exists().where(and_(evidence_chain.c.record_table == name,
                                          evidence_chain.c.record_pk == t.c.pk))
            report.unchained += (await conn.execute(
                select(func.count()).select_from(t)
                .where(~chained, t.c[spec.time_column] < cutoff)
            )).scalar_one()
        # The chain proves what was recorded; this proves the payments' and schedules'
        # changing columns are what their newest events recorded.
        payments_now = await check_payments(conn)
        report.payments_compared = payments_now.compared
        report.payments_uncompared = payments_now.uncompared
        report.broken = payments_now.problem
        if report.broken is None:
            schedules_now = await pension_evidence.EVIDENCED.check(conn)
            report.schedules_compared = schedules_now.compared
            report.schedules_uncompared = schedules_now.uncompared
            report.broken = schedules_now.problem
    return report


async def _break(conn: AsyncConnection, expected_seq: int, seq: int, table: str, pk: int,
                 digest: str | None, record_sha: str, chain_sha: str, prev: str) -> str:
    """Name the first problem of an entry that failed a check (the slow path, once)."""
    where = f"chain entry seq {seq} ({table} pk {pk})"
    if seq != expected_seq:
        return f"chain entries {expected_seq}..{seq - 1} are missing"
    if table not in CHAINED:
        return f"{where}: unknown record table"
    if digest is None:
        return f"{where}: the record was deleted"
    if digest != record_sha:
        return f"{await _describe(conn, table, pk)}: the record was altered"
    assert _link(prev, table, pk, record_sha) != chain_sha
    return f"{where}: the chain link does not match (entry altered)"


async def _rewritten(conn: AsyncConnection, point: TrustedPoint, last_good: int,
                     keys: KeyRing | None) -> str:
    """Name what an insider rewrote between the last matching trusted point and ``point``.

    The stored chain agrees with itself there, so only what the insider could not recompute
    tells the record: a signature by a key the insider does not hold (a partner's, or the
    hub's, whose private key is not in the database). A record that carries no signature (a
    payment, its events, an admin audit record) cannot be told from its neighbours that way:
    the unsigned records of the range are named instead, the rewritten one among them.
    """
    head = (f"the chain hash at seq {point.seq} differs from the {point.label}: "
            f"history in seq {last_good + 1}..{point.seq} was rewritten")
    in_range = and_(evidence_chain.c.seq > last_good, evidence_chain.c.seq <= point.seq)
    if keys is not None:
        probe = _Signatures(keys, VerifyReport())
        rows = (await conn.execute(
            select(evidence_chain.c.record_table, evidence_chain.c.record_pk)
            .where(in_range).order_by(evidence_chain.c.seq))).all()
        for r in rows:
            spec = CHAINED.get(r.record_table)
            if spec is None or not spec.signed:
                continue
            problem = await probe.check(conn, spec, r.record_table, [r.record_pk])
            if problem is not None:
                return f"{head}; the first rewritten record: {problem}"
    unsigned = [name for name, spec in CHAINED.items() if not spec.signed]
    of_unsigned = and_(in_range, evidence_chain.c.record_table.in_(unsigned))
    count = (await conn.execute(select(func.count()).select_from(evidence_chain)
                                .where(of_unsigned))).scalar_one()
    if not count:
        return head if keys is None else \
            f"{head} (every record there still carries valid signatures: unsigned columns)"
    first = (await conn.execute(
        select(evidence_chain.c.record_table, evidence_chain.c.record_pk)
        .where(of_unsigned).order_by(evidence_chain.c.seq).limit(_NAMED))).all()
    names = [await _describe(conn, r.record_table, r.record_pk) for r in first]
    more = f" and {count - len(names)} more" if count > len(names) else ""
    checked = "every signature there still verifies; " if keys is not None else ""
    return (f"{head} ({checked}no signature tells which record; the unsigned records there: "
            f"{', '.join(names)}{more})")
