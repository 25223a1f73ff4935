"""A reconciliation run: store the statement, scan it, prove it, match in batches, classify,
write the items, cases and payment changes, and report.

A run is identified by (rail, business date, the statement's sha256, rule version). Its whole
result is written in one transaction, under a per-(rail, date) lock (PostgreSQL advisory lock;
SQLite's single writer), so two processes asking for the same run get one run: the second
finds it by its key and returns it. Re-running changes nothing and rewrites the same report
bytes, which are only ever produced from stored rows. A different statement for the same rail
and date (a corrected file) is a new run that supersedes the current one.

Memory stays flat with the statement's size: the file is stored and scanned as a stream, lines
are matched ~2,000 at a time with one key lookup per batch, the ledger side is streamed by
keyset pages, and the report is written from the stored items page by page.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import io
import json
import logging
import os
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

import httpx
from sqlalchemy.engine import Row, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.clock import Clock, iso_millis
from gateway.errors import (
    ConflictError,
    DeliveryError,
    InvalidMessageError,
    NotFoundError,
    ReportWriteError,
)
from gateway.evidence import payments as payments_evidence
from gateway.money import MINOR_UNITS, Money
from gateway.observability.logs import held_logs
from gateway.payments import repository as payments_repo
from gateway.payments.domain import Cause, PaymentState, Transition
from gateway.payments.rails import Settlement
from gateway.payments.service import Change, PaymentService
from gateway.ports.rail import (
    BadLine,
    LineKind,
    RailAdapter,
    StatementItem,
    StatementLine,
    StatementProof,
    StatementRecord,
)
from gateway.reconciliation import domain
from gateway.reconciliation import repository as repo
from gateway.reconciliation.calendar import KL, BusinessCalendar, calendar_for
from gateway.reconciliation.domain import (
    CASE_KINDS,
    RULE_VERSION,
    Item,
    ItemKind,
    LedgerPayment,
    Tally,
    Verdict,
)
from gateway.reconciliation.reasons import reason_for
from gateway.reconciliation.report import (
    ITEM_FIELDS,
    amount,
    csv_header,
    csv_records,
    summary_bytes,
)
from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["CHUNK", "ReconciliationService", "RunResult", "case_view", "item_view", "reconcile",
           "run_view"]

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024  # statement bytes per stored chunk
BATCH = 2000  # statement items matched per key lookup
_CASE_KINDS = sorted(k.value for k in CASE_KINDS)
_CASE_KIND_SET = frozenset(_CASE_KINDS)
_PROPOSAL_WINDOW_DAYS = 5
_MAX_LISTED = 100  # proofs, problems and changes listed in the summary (all are counted)
# Payments a run remembers having met without reconciling them (mismatches, returns): a
# bounded set; a run with more asks its written items instead (slower, same answer).
_MAX_MET = 100_000
# The states a statement line can move a payment from (to reconciled, or returned).
_MOVABLE = frozenset({"paid", "reconciled"})
_BACK = frozenset({LineKind.returned, LineKind.reversal})  # the money coming back

# Told the lines read so far, after each batch. A statement that does not prove itself is
# read twice (the second reading moves nothing), so its count starts again from zero once.
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class RunResult:
    """A finished run (new or found again) and where its reports were written."""

    run_id: str
    pk: int
    verdict: Verdict
    summary: Mapping[str, Any]
    summary_bytes: bytes
    items_csv_sha256: str
    reused: bool
    report_dir: Path | None = None


class _Unproven(Exception):  # noqa: N818 - a signal within a run, never an error shown
    """A statement taken at its word failed a proof or skipped a sequence number at its end:
    the run is rolled back to before it began and done again, moving nothing."""


@dataclass
class _Scan:
    """What a scan has read so far, beside the lines."""

    accounts: dict[str, int] = field(default_factory=dict)  # last sequence per account
    gaps: int = 0
    gap_notes: list[str] = field(default_factory=list)  # the first _MAX_LISTED gaps
    statement_ids: list[str] = field(default_factory=list)
    proofs_ok: int = 0
    proofs_failed: int = 0
    failed: list[str] = field(default_factory=list)  # the first _MAX_LISTED failures


class _HashingReader(io.RawIOBase):
    """A binary file that hashes what is read through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.raw.read(len(b))
        n = len(data)
        b[:n] = data
        self.sha.update(data)
        return n


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class ReconciliationService:
    """Runs reconciliation for the hub's rails (built by the composition root)."""

    def __init__(self, uow: UnitOfWorkFactory, payments: PaymentService,
                 rails: Mapping[str, RailAdapter], settlements: Mapping[str, Settlement],
                 clock: Clock, http: Callable[[], httpx.AsyncClient]) -> None:
        self.uow = uow
        self.payments = payments
        self.rails = rails
        self.settlements = settlements
        self.clock = clock
        self.http = http

    def settlement(self, rail: str) -> Settlement:
        return self.settlements.get(rail) or Settlement()

    # -- the run ---------------------------------------------------------------------------

    async def run(self, rail: str, day: date, statement: Path | bytes | None = None,
                  report_dir: Path | None = None, *, give_up: bool = False,
                  progress: Progress | None = None) -> RunResult:
        """Reconcile ``rail`` for ``day`` against ``statement`` (a file, its bytes, or None to
        fetch it from the rail); write the reports to ``report_dir`` if given.

        ``give_up``: the statement is still not available and the caller has stopped
        waiting: record an ``incomplete`` run without one instead of raising.

        Raises:
            InvalidMessageError: unknown rail, unreadable file, not this rail's statement.
            TransientDeliveryError: the rail has no statement for ``day`` yet (retry later).
            PermanentDeliveryError: the rail refused the request (its credentials, say).
            ReportWriteError: ``report_dir`` refused the report; says whether the run is
                stored (then asking again writes it).
        """
        adapter = self.rails.get(rail)
        if adapter is None:
            raise InvalidMessageError("schema_violation", f"rail: {rail!r} is not configured "
                                      f"(one of {', '.join(sorted(self.rails)) or 'none'})")
        today = self.clock().astimezone(KL).date()
        if day > today:
            raise InvalidMessageError("schema_violation", f"business date {day.isoformat()} "
                                      "has not begun in Asia/Kuala_Lumpur (today is "
                                      f"{today.isoformat()}): no statement can be of it")
        cal = calendar_for(self.settlement(rail).holiday_subdivision)
        given = statement is not None
        if statement is None:
            try:
                statement = await adapter.fetch_statement(self.http(), day)
                source = f"fetched:{day.isoformat()}"
            except DeliveryError as exc:
                # Late (transient) or refused (permanent): at the deadline either way there is
                # no statement, and the run says why.
                if not give_up:
                    raise
                return await self._run(rail, day, None, None, None, report_dir, cal, progress,
                                       missing=str(exc))
        else:
            source = statement.name[-200:] if isinstance(statement, Path) else "bytes"
        opener = _opener(statement)
        stored_sha: list[str] = []
        spare: BinaryIO | None = None
        scanner = _ScanThread(_checked_scan(adapter, opener, stored_sha))
        try:
            first = await scanner.first()  # not a statement: raises, stores none
            if given and isinstance(first, StatementRecord) and _other_day(first, day):
                # A wrong file given: refused before it is stored or supersedes anything. One
                # the rail served for the day is its answer: stored and run, its date a failed
                # proof (incomplete, nothing moved), so the day has a run that says so.
                raise InvalidMessageError("schema_violation", f"{_other_day(first, day)} "
                                          f"(statement {first.statement_id})")
            # Opened now, for a second reading if the statement does not prove itself: the
            # bytes begun with (checked against those stored), even if the file given is
            # moved away or renamed over meanwhile.
            spare = opener()
            stored = await self._store(rail, opener, source)
            stored_sha.append(stored.sha256)
            return await self._run(rail, day, stored, scanner, first, report_dir, cal, progress,
                                   reread=lambda: _checked_scan(adapter, lambda: spare,
                                                                stored_sha))
        finally:
            await scanner.close()
            if spare is not None:
                spare.close()

    async def _store(self, rail: str, opener: Callable[[], BinaryIO],
                     source: str) -> RowMapping:
        """Store the statement's bytes (chunked, hashed while streamed); once per content."""
        for attempt in (1, 2):
            try:
                async with self.uow() as uow:
                    conn = uow.conn
                    pk = await repo.insert_statement(conn, dict(
                        rail=rail, sha256=f"pending:{uuid.uuid4().hex}", size=0, chunks=0,
                        source=source, received_at=self.clock()))
                    sha, size, seq = hashlib.sha256(), 0, 0
                    with opener() as f:
                        while chunk := await asyncio.to_thread(f.read, CHUNK):
                            sha.update(chunk)
                            size += len(chunk)
                            await repo.insert_blob(conn, pk, seq, chunk)
                            seq += 1
                    digest = sha.hexdigest()
                    existing = await repo.statement_by_sha(conn, rail, digest)
                    if existing is not None:
                        return existing  # stored before: this copy is rolled back
                    await repo.finish_statement(conn, pk, digest, size, seq)
                    row = await repo.statement_by_sha(conn, rail, digest)
                    await uow.commit()
                    assert row is not None
                    return row
            except IntegrityError:
                if attempt == 2:
                    raise  # pragma: no cover - the second attempt finds the first's row
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run(self, rail: str, day: date, stmt: RowMapping | None,
                   scanner: _ScanThread | None, first: StatementItem | None,
                   report_dir: Path | None, cal: BusinessCalendar,
                   progress: Progress | None,
                   reread: Callable[[], Iterator[StatementItem]] | None = None,
                   missing: str = "the rail never made it available") -> RunResult:
        sha = stmt.sha256 if stmt is not None else "none"
        run_key = _sha(f"{rail}|{day.isoformat()}|{sha}|{RULE_VERSION}".encode())
        async with self.uow(read_only=True) as reader:
            run_key, found = await _latest(reader.conn, run_key)
        if found is None:
            async with self.uow() as uow:
                await repo.advisory_lock(uow.conn, rail, day)
                run_key, found = await _latest(uow.conn, run_key)  # another process's, now
                if found is None:
                    run = _Run(self, uow.conn, rail, day, stmt, run_key, cal, progress,
                               missing)
                    committed = False
                    try:
                        # Moving payments as it goes, the run learns at the statement's end
                        # whether it should have (its proofs come last): if not, the run is
                        # undone to here and done again from a second reading, moving none.
                        # Nearly every statement proves itself, and is read once.
                        try:
                            # What the moves log (a discrepancy opened, a notice) is held
                            # back with them, and dropped if they are undone.
                            with held_logs(PaymentService.__module__):
                                async with uow.conn.begin_nested():  # undone if it raises
                                    pk, csv_sha, tmp = await run.execute(scanner, first,
                                                                         report_dir)
                        except _Unproven:
                            run.discard_report()
                            assert reread is not None  # only a statement's run is unproven
                            run = _Run(self, uow.conn, rail, day, stmt, run_key, cal,
                                       progress, missing, trusted=False)
                            again = _ScanThread(reread())
                            try:
                                pk, csv_sha, tmp = await run.execute(
                                    again, await again.first(), report_dir)
                            finally:
                                await again.close()
                        await uow.commit()
                        committed = True
                        result = await self._result(pk, reused=False, report_dir=None)
                        if report_dir is not None and tmp is not None:
                            _publish(report_dir, result.summary_bytes, tmp)
                    except BaseException as exc:
                        # Not committed: no report of a run that did not happen. Committed
                        # but not published: the run stands, and asking again rewrites its
                        # report from the stored rows; either way no temporary file stays.
                        run.discard_report()
                        if isinstance(exc, ReportWriteError):
                            raise ReportWriteError(f"{exc}; " + (
                                _stored(run.run_id) if committed else "the run was not stored")
                            ) from exc
                        raise
                    return replace(result, report_dir=report_dir)
        try:
            return await self._result(found.pk, reused=True, report_dir=report_dir)
        except ReportWriteError as exc:
            raise ReportWriteError(f"{exc}; {_stored(found.run_id)}") from exc

    async def _result(self, pk: int, *, reused: bool, report_dir: Path | None) -> RunResult:
        """A stored run's result, rewriting its reports from stored rows if asked."""
        async with self.uow(read_only=True) as reader:
            row = await repo.run_by_pk(reader.conn, pk)
            manifest = json.loads(row.manifest)
            summary = row.summary.encode()
            if report_dir is not None:
                tmp = await _write_items(reader.conn, pk, report_dir)
                _publish(report_dir, summary, tmp)
        return RunResult(row.run_id, pk, Verdict(row.verdict), json.loads(summary), summary,
                         manifest["outputs"]["items.csv"], reused, report_dir)

    # -- reads for the back office ---------------------------------------------------------

    async def runs(self, rail: str | None, day: date | None, before: int | None,
                   limit: int) -> dict[str, Any]:
        async with self.uow(read_only=True) as reader:
            rows = await repo.runs_page(reader.conn, rail=rail, day=day, before=before,
                                        limit=limit)
        return {"runs": [run_view(r) for r in rows],
                "next_before": rows[-1].pk if len(rows) == limit else None}

    async def run_detail(self, run_id: str) -> dict[str, Any]:
        async with self.uow(read_only=True) as reader:
            row = await repo.run_by_id(reader.conn, run_id)
        if row is None:
            raise NotFoundError("not_found", f"no reconciliation run {run_id}")
        return {**run_view(row), "summary": json.loads(row.summary),
                "manifest": json.loads(row.manifest)}

    async def items(self, run_id: str, kind: str | None, after: int,
                    limit: int) -> dict[str, Any]:
        async with self.uow(read_only=True) as reader:
            row = await repo.run_by_id(reader.conn, run_id)
            if row is None:
                raise NotFoundError("not_found", f"no reconciliation run {run_id}")
            items = await repo.items_page(reader.conn, row.pk, after=after, limit=limit,
                                          kind=kind)
        return {"items": [item_view(i) for i in items],
                "next_after": items[-1].seq if len(items) == limit else None}

    async def cases(self, state: str | None, kind: str | None, rail: str | None,
                    before: int | None, limit: int) -> dict[str, Any]:
        async with self.uow(read_only=True) as reader:
            rows = await repo.cases_page(reader.conn, state=state, kind=kind, rail=rail,
                                         before=before, limit=limit)
            today = self.clock().astimezone(KL).date()
        return {"cases": [case_view(r, today) for r in rows],
                "next_before": rows[-1].pk if len(rows) == limit else None}


class _Run:
    """One run's work inside its transaction."""

    def __init__(self, svc: ReconciliationService, conn: AsyncConnection, rail: str, day: date,
                 stmt: RowMapping | None, run_key: str, cal: BusinessCalendar,
                 progress: Progress | None, missing: str = "", *,
                 trusted: bool = True) -> None:
        self.svc, self.conn, self.rail, self.day, self.stmt = svc, conn, rail, day, stmt
        self.missing = missing  # without a statement: why there is none
        self.run_key, self.run_id = run_key, run_key[:20]
        self.cal, self.progress = cal, progress
        s = svc.settlement(rail)
        self.settlement_days = s.settlement_days
        hh, mm = s.cutoff.split(":")
        self.cutoff = time(int(hh), int(mm))
        self.now = svc.clock()
        self.tally = Tally()
        self.scan = _Scan()
        self.seq = 0
        self.lines = 0
        self.pk = 0
        self.superseded: RowMapping | None = None
        # Every earlier run of the rail and date: the current one (``superseded``) and the
        # runs it superseded in turn. This run replaces them all, so what any of them booked
        # is the booking this statement restates, never an earlier one.
        self.replaced: list[int] = []
        # What ``changes`` compares with: the newest of them taken at its word, the statement
        # the ledger and the cases were last set by (else the current one).
        self.baseline: int | None = None
        self.opened = self.updated = self.kept_closed = 0
        # Whether the statement is taken at its word: first it is, and the run stops with
        # _Unproven at the end if its proofs fail; done again untrusted, its lines are
        # classified as ever and move no payment; how many would have (reconciled, returned).
        self.trusted = trusted
        self.unmoved = [0, 0]
        self.follows: str | None = None  # the run its sequence numbers were checked against
        self.met: set[tuple[int, bool]] | None = set()
        # The pipeline of _lines: the last batch's writes, not started or running, and the
        # payment states that batch changed.
        self._unwritten: Callable[[], Coroutine[Any, Any, None]] | None = None
        self._writing: asyncio.Future[None] | None = None
        self._carried: dict[int, str] = {}
        # items.csv, made from each item row as it is numbered (the rows written, so the same
        # bytes as made again from the stored items, which a re-run does); None once an item
        # written has been changed (proposals): then it is made from the stored items.
        self._csv: _ItemsCsv | None = None
        self._report_tmp: Path | None = None  # items.csv made, until it is published

    def discard_report(self) -> None:
        """Remove items.csv as far as it was made: the run failed, was not committed, or
        could not be published."""
        if self._csv is not None:
            self._csv.discard()
        if self._report_tmp is not None:
            _remove(self._report_tmp)

    async def execute(self, scanner: _ScanThread | None, first: StatementItem | None,
                      report_dir: Path | None) -> tuple[int, str, Path | None]:
        """Run it in the caller's transaction; return the run's pk, the sha256 of its
        items.csv and, with ``report_dir``, the temporary file holding it (to publish once
        committed; ``discard_report()`` if not).

        Raises:
            _Unproven: trusted, the statement failed a proof or skipped a sequence number;
                what the run wrote is to be rolled back, and the run done again untrusted.
        """
        conn = self.conn
        self._csv = _ItemsCsv(report_dir)
        self.superseded = await repo.current_run(conn, self.rail, self.day)
        self.replaced = await repo.runs_of(conn, self.rail, self.day)
        self.baseline = next(
            (pk for pk, text in await repo.summaries(conn, self.replaced)
             if _taken_at_its_word(json.loads(text))),
            self.superseded.pk if self.superseded else None)
        previous = await repo.previous_run(conn, self.rail, self.day)
        self.follows = previous.run_id if previous else None
        self.scan.accounts = json.loads(previous.accounts) if previous else {}
        self.pk = await repo.insert_run(conn, dict(
            run_id=self.run_id, run_key=self.run_key, rail=self.rail, business_date=self.day,
            rule_version=RULE_VERSION, statement_pk=self.stmt.pk if self.stmt else None,
            verdict="running", supersedes_pk=self.superseded.pk if self.superseded else None,
            accounts="{}", summary="", manifest="", manifest_sha256="", items=0,
            started_at=self.now, finished_at=self.now))
        if scanner is not None:
            await self._lines(scanner, first)
        proved = domain.taken_at_its_word(failed_proofs=self.scan.proofs_failed,
                                          sequence_gaps=self.scan.gaps)
        if self.trusted and not proved:
            raise _Unproven(self.run_id)
        if not self.trusted and proved:
            # Both readings are of the stored bytes (each checked against their hash), and
            # the adapters' scans are deterministic: this is a defect; nothing is committed.
            raise AssertionError(f"run {self.run_id}: the statement failed its proofs in one "
                                 "reading and not in the other")
        await self._expected()
        await self._propose()
        problems = ([f"proof failed: {f}" for f in self.scan.failed] + self.scan.gap_notes
                    + ([] if self.stmt else [f"no statement: {self.missing}"]))
        if self.tally.counts.get(ItemKind.quarantined.value):
            problems.append(f"{self.tally.counts[ItemKind.quarantined.value]} line(s) "
                            "quarantined")
        if any(self.unmoved):
            matched, returned = self.unmoved
            parts = [f"{matched} payment(s) it matched stay paid"] if matched else []
            if returned:
                parts.append(f"{returned}{'' if matched else ' payment(s)'} it returned are "
                             "not returned")
            problems.append("nothing was moved on this statement's word: "
                            + " and ".join(parts))
        # Not trusted, the statement's word clears no case either: a payout it shows is not
        # thereby on a statement, nor a discrepancy it no longer shows thereby gone. The
        # cases stay open for the run that proves itself, which replaces this one too.
        closed = await repo.close_cleared(
            conn, self.rail, replaced=self.replaced, run_pk=self.pk,
            note=f"cleared by run {self.run_id}", now=self.now, apply=self.trusted)
        if not self.trusted and closed:
            problems.append(f"no case was closed on this statement's word: {closed} case(s) "
                            "it no longer finds stay open")
            closed = 0
        verdict = domain.verdict(self.tally, failed_proofs=self.scan.proofs_failed,
                                 sequence_gaps=self.scan.gaps,
                                 statement_missing=self.stmt is None)
        changes = await self._changes()
        if self._csv is not None:
            made, self._csv = self._csv, None
            self._report_tmp = made.tmp  # before closing, which can fail (its last write)
            csv_sha, tmp = made.close()
        else:
            csv_sha, tmp = await _items_csv(conn, self.pk, report_dir)  # removed if it fails
            self._report_tmp = tmp
        accounts = self.scan.accounts
        summary = self._summary(verdict, problems, changes, closed)
        sbytes = summary_bytes(summary)
        manifest = {
            "run_id": self.run_id, "rail": self.rail, "business_date": self.day.isoformat(),
            "rule_version": RULE_VERSION,
            "inputs": {"statement_sha256": self.stmt.sha256 if self.stmt else None},
            "supersedes": self.superseded.run_id if self.superseded else None,
            "outputs": {"summary.json": _sha(sbytes), "items.csv": csv_sha},
            "verdict": verdict.value, "counts": dict(sorted(self.tally.counts.items())),
        }
        text = _canonical(manifest)
        await repo.finish_run(conn, self.pk, dict(
            verdict=verdict.value, accounts=_canonical(accounts), summary=sbytes.decode(),
            manifest=text, manifest_sha256=_sha(text.encode()), items=self.seq,
            finished_at=self.svc.clock()))
        if self.superseded is not None:
            await repo.finish_run(conn, self.superseded.pk, dict(superseded_by_pk=self.pk))
        log.info("reconciliation %s %s: run %s %s (%d items)", self.rail, self.day, self.run_id,
                 verdict.value, self.seq)
        return self.pk, csv_sha, tmp

    # -- statement lines -------------------------------------------------------------------

    async def _lines(self, scanner: _ScanThread, first: StatementItem | None) -> None:
        """Match the statement a batch at a time, three things overlapping instead of taking
        turns: the next batch is parsed (on the scan's own thread) and this batch is
        classified while the previous batch's writes run on the database. At most three
        batches are held, and only that one thread reads the scanner.

        The connection runs one statement at a time, in order: a batch's lookup is made
        before the previous batch's writes start, so it sees its payments as they were before
        that batch; the states that batch changed are carried over (``_carried``), and
        anything that must see them in the database (a return's locked read, the items
        written so far) waits for those writes first (``_settle``).
        """
        pending: list[StatementItem] = [first] if first is not None else []
        ahead = asyncio.ensure_future(scanner.batch(BATCH))
        try:
            while True:
                more = await ahead
                if more:
                    ahead = asyncio.ensure_future(scanner.batch(BATCH))
                pending += more
                if pending:
                    await self._batch(pending)
                    pending = []
                if not more:
                    break
            await self._drain()
        finally:
            if not ahead.done():  # a batch failed: let the read finish before the run unwinds
                await asyncio.wait([ahead])
            if not ahead.cancelled():
                ahead.exception()  # retrieved: the batch's error is the one to report
            if self._writing is not None and not self._writing.done():
                await asyncio.wait([self._writing])  # the connection is still in use
            if self._writing is not None and not self._writing.cancelled():
                self._writing.exception()  # retrieved: reported by _settle, or superseded

    def _start_writes(self) -> None:
        """Start the writes of the batch classified last (its lookup has been made)."""
        if self._unwritten is not None:
            self._writing = asyncio.ensure_future(self._unwritten())
            self._unwritten = None

    async def _settle(self) -> None:
        """Wait for the writes started last (raising their error, e.g. a state conflict)."""
        writing, self._writing = self._writing, None
        if writing is not None:
            await writing

    async def _drain(self) -> None:
        """Write everything classified so far."""
        await self._settle()
        self._start_writes()
        await self._settle()

    async def _batch(self, batch: Sequence[StatementItem]) -> None:
        conn = self.conn
        if self.met is None:  # the items written so far are asked below: write them all
            await self._drain()
        lines = [i for i in batch if type(i) is StatementLine]  # as the loop below tells them
        by_id = {r.payment_id: r for r in await repo.payments_by_ids(
            conn, self.rail, sorted({x.end_to_end_id for x in lines if x.end_to_end_id}))}
        refs = sorted({k for x in lines if x.end_to_end_id not in by_id
                       for k in (x.uetr, x.rail_reference) if k})
        by_ref: dict[str, repo.Matched] = {}
        for r in await repo.payments_by_refs(conn, self.rail, refs):
            if r.rail_reference is not None:  # always: it is what they were found by
                by_ref.setdefault(r.rail_reference, r)
        rows = {r.pk: r for r in (*by_id.values(), *by_ref.values())}
        # Not trusted, this run moves nothing and the database still shows the payments as
        # they were before it: what its written items made of them is read back, so each line
        # reads a payment as the lines before it left it, as in a trusted run (the last
        # batch's, not written yet, are carried).
        would = {} if self.trusted else await repo.moved_by(conn, self.pk, sorted(rows))

        def state_of(pk: int, r: repo.Matched) -> str:
            return would.get(pk, r.state)

        # Changed beside the hub: a line that would move one says so and moves nothing. The
        # lookup locked the rows and, where it could, compared them (``unchanged``); why one
        # differs, or whether one does where it could not compare, is asked here. So the
        # batch's writes never meet one and need not check again.
        held = await payments_evidence.mismatched(conn, [
            pk for pk, r in rows.items()
            if state_of(pk, r) in _MOVABLE and r.unchanged is not True])
        seen: set[tuple[int, bool]] = set()
        if self.met is None:  # too many to remember: ask the items written so far
            seen = await repo.line_seen(conn, self.pk, sorted(rows))
        by_old = await repo.matched_in(conn, self.replaced, sorted(
            pk for pk, r in rows.items() if state_of(pk, r) == "reconciled"))
        if self.met is not None:
            # Reconciled already, by an earlier statement or by this run's earlier batches (the
            # last one's in memory, older ones written): which is read from what this run
            # matched, never from where a batch ended, so a second payout line is described
            # the same in any batching. The query runs only for such payments (duplicates).
            mine = {pk for pk, s in self._carried.items() if s == "reconciled" and pk in rows}
            seen |= {(pk, False) for pk in mine}
            seen |= await repo.line_seen(conn, self.pk, sorted(
                pk for pk, r in rows.items()
                if state_of(pk, r) == "reconciled" and pk not in by_old and pk not in mine))
        self._start_writes()  # the previous batch's: from here on, they run beside this one
        # Changed in this batch, or in the previous one (whose writes the lookup above did
        # not see); only this batch's are carried to the next (memory stays one batch's).
        states: dict[int, str] = {**would, **self._carried}
        changed: dict[int, str] = {}
        reconciled: list[repo.Matched] = []
        changes: dict[int, Change] = {}
        items: list[Item] = []
        for n, it in enumerate(batch):
            if n % 256 == 255 and self._writing is not None:
                await asyncio.sleep(0)  # let the writes send their next statement
            if type(it) is not StatementLine:  # the exact type: the test a line pays for
                self._not_a_line(it, items)
                continue
            self.lines += 1
            row = _find(it, by_id, by_ref)
            payment = None
            back = it.kind in _BACK
            was_seen = False
            if row is not None:
                state = states.get(row.pk, row.state)
                payment = _ledger(row, self.cal, self.cutoff, row.pk in by_old, state,
                                  dated=False)
                was_seen = (row.pk, back) in seen or (
                    self.met is not None and (row.pk, back) in self.met)
            item = domain.classify_line(it, payment, seen=was_seen,
                                        held=held.get(row.pk) if row is not None else None)
            if row is not None and item.payment is not None:
                seen.add((row.pk, back))
                if item.to_state != "reconciled":
                    self._remember((row.pk, back))
            if row is not None and item.to_state is not None and not self.trusted:
                # Classified as if it held (the same items, the same later lines' kinds);
                # only the payment stays as it is.
                self.unmoved[item.to_state != "reconciled"] += 1
                if item.to_state != "reconciled" and (row.pk, False) in seen:
                    self._remember((row.pk, False))
                states[row.pk] = changed[row.pk] = item.to_state
            elif row is not None and item.to_state == "reconciled":
                reconciled.append(row)
                states[row.pk] = changed[row.pk] = item.to_state
            elif row is not None and item.to_state is not None:
                await self._settle()  # the locked read below must see the previous batch
                if row.pk in states:  # changed earlier (this batch or the last): write it
                    await self._flush(reconciled, changes)
                fresh = await self._locked(row, states.get(row.pk, row.state))
                changes[fresh.pk] = self._change(fresh, item)
                states[fresh.pk] = changed[fresh.pk] = item.to_state
                if (fresh.pk, False) in seen:
                    # Its state said "paid on this statement" (reconciled); returned, it no
                    # longer does: remember it, so a later payout line is still a duplicate.
                    self._remember((row.pk, False))
            items.append(item)
        await self._settle()
        if self.met is not None and len(self.met) > _MAX_MET:
            self.met = None  # from the next batch on, ask the written items
        item_rows = self._rows(items)
        self._carried = changed
        self._unwritten = functools.partial(self._write_batch, reconciled, changes, item_rows)
        if self.progress is not None:
            self.progress(self.lines)

    def _not_a_line(self, it: StatementItem, items: list[Item]) -> None:
        """Note a statement's record or proof; a bad line is quarantined (an item)."""
        if isinstance(it, StatementRecord):
            if len(self.scan.statement_ids) < _MAX_LISTED:
                self.scan.statement_ids.append(it.statement_id)
            if other := _other_day(it, self.day):
                self.scan.proofs_failed += 1
                if len(self.scan.failed) < _MAX_LISTED:
                    self.scan.failed.append(f"{it.statement_id} business_date: {other}")
            if it.sequence is not None:
                for gap in domain.sequence_gaps(self.scan.accounts,
                                                [(it.account, it.sequence)]):
                    self.scan.gaps += 1
                    if len(self.scan.gap_notes) < _MAX_LISTED:
                        self.scan.gap_notes.append(gap)
                self.scan.accounts[it.account] = it.sequence
        elif isinstance(it, StatementProof):
            if it.ok:
                self.scan.proofs_ok += 1
            else:
                self.scan.proofs_failed += 1
                if len(self.scan.failed) < _MAX_LISTED:
                    self.scan.failed.append(f"{it.statement_id} {it.check}: {it.detail}")
        elif isinstance(it, BadLine):
            items.append(Item(ItemKind.quarantined, line_ref=f"{it.statement_id}#{it.line_no}",
                              detail=f"line {it.line_no}: {it.reason}"))
        else:
            raise TypeError(f"not a statement item: {type(it).__name__}")

    async def _write_batch(self, reconciled: list[repo.Matched], changes: dict[int, Change],
                           rows: list[tuple[Any, ...]]) -> None:
        await self._flush(reconciled, changes)
        await repo.insert_items(self.conn, rows)
        await self._cases(rows)


    async def _locked(self, row: repo.Matched, expected: str) -> RowMapping:
        """The payment's row, locked, as it was classified (a return goes through
        ``PaymentService.apply``, which needs the current row).

        Raises:
            ConflictError: state_conflict, it changed since it was read.
        """
        fresh = (await payments_repo.by_ids(self.conn, [row.payment_id],
                                            lock=True))[row.payment_id]
        if fresh.state != expected:
            raise ConflictError("state_conflict", f"payment {row.payment_id} changed while "
                                "being reconciled; run the reconciliation again")
        return fresh

    def _remember(self, key: tuple[int, bool]) -> None:
        """Remember a payment a line met without reconciling it (a mismatch, a return...),
        so a second line is a duplicate; past _MAX_MET the run asks its written items (from
        the next batch on: the rest of this one still needs what it remembers)."""
        if self.met is not None:
            self.met.add(key)

    async def _flush(self, reconciled: list[repo.Matched], changes: dict[int, Change]) -> None:
        await self.svc.payments.reconcile_many(
            self.conn, reconciled, f"run {self.run_id}: matched on the {self.rail} statement "
            f"of {self.day.isoformat()}", self.now, checked=True)
        await self.svc.payments.apply(self.conn, list(changes.values()), self.now)
        reconciled.clear()
        changes.clear()

    def _change(self, row: RowMapping, item: Item) -> Change:
        """A return or reversal read from the statement, as a payment change."""
        assert item.to_state == PaymentState.returned.value
        reason = reason_for(item.reason_code)
        what = "reversed" if item.kind == ItemKind.reversed else "returned"
        text = f"{what} on the statement" + (f": {reason.code} {reason.name}" if reason else "")
        tr = Transition(PaymentState(row.state), PaymentState.returned, Cause.statement,
                        f"run {self.run_id}: {text}")
        return Change(row, tr, reason=text)

    def _rows(self, items: Sequence[Item]) -> list[tuple[Any, ...]]:
        """Number and count the items, as the records to write."""
        self.tally.add_all(items)
        first, self.seq = self.seq + 1, self.seq + len(items)
        rows = [_item_record(self.pk, seq, item) for seq, item in enumerate(items, first)]
        if self._csv is not None:
            self._csv.add(csv_records(rows))
        return rows

    async def _write(self, items: Sequence[Item]) -> None:
        rows = self._rows(items)
        await repo.insert_items(self.conn, rows)
        await self._cases(rows)

    # -- the ledger side -------------------------------------------------------------------

    async def _expected(self) -> None:
        """Every paid payment on no line of this statement: pending or missing."""
        until = datetime.combine(self.day + timedelta(days=1), time(0), KL).astimezone(UTC)
        after = 0
        while True:
            rows = await repo.expected_page(self.conn, self.rail, paid_before=until,
                                            run_pk=self.pk, replaced=self.replaced,
                                            after=after, limit=BATCH)
            if not rows:
                return
            await self._write([domain.classify_expected(
                _ledger(r, self.cal, self.cutoff, True), self.day, self.settlement_days,
                self.cal) for r in rows])
            after = rows[-1].pk

    async def _propose(self) -> None:
        """Propose payments for keyless lines (never a match)."""
        after = 0
        window = timedelta(days=_PROPOSAL_WINDOW_DAYS + 1)
        while True:
            lines = await repo.unknown_lines(self.conn, self.pk, after=after, limit=BATCH)
            if not lines:
                return
            after = lines[-1].seq
            dated = [r for r in lines if r.value_on is not None]
            if not dated:
                continue
            pairs = sorted({(r.statement_minor, r.statement_currency) for r in dated})
            lo = datetime.combine(min(r.value_on for r in dated), time(0), KL) - window
            hi = datetime.combine(max(r.value_on for r in dated), time(0), KL) + window
            found = [_ledger(p, self.cal, self.cutoff, True) for p in await repo.candidates(
                self.conn, self.rail, pairs=pairs, since=lo.astimezone(UTC),
                until=hi.astimezone(UTC), run_pk=self.pk, replaced=self.replaced)]
            updates = []
            for r in dated:
                line = _line_of(r)
                if line is None:
                    continue
                ids = domain.propose(line, found, window_days=_PROPOSAL_WINDOW_DAYS)
                if ids:
                    updates.append({"b_pk": r.pk, "b_proposals": " ".join(ids)})
            if updates and self._csv is not None:
                self._csv.discard()  # items written are changed: make it from them instead
                self._csv = None
            await repo.set_proposals(self.conn, updates)

    # -- cases -----------------------------------------------------------------------------

    async def _cases(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Open or update one case per (rail, subject, kind) for the items that need ops."""
        worthy = {}
        for rec in rows:
            if rec[_KIND_AT] in _CASE_KIND_SET:  # the last item of a subject wins
                worthy[(rec[_SUBJECT_AT], rec[_KIND_AT])] = dict(zip(ITEM_FIELDS, rec,
                                                                     strict=True))
        if not worthy:
            return
        existing = await repo.cases_of(self.conn, self.rail, sorted(worthy))
        new, changed = [], []
        for key, r in sorted(worthy.items()):
            kind = ItemKind(r["kind"])
            probe = Item(kind, ledger_minor=r["ledger_minor"],
                         statement_minor=r["statement_minor"], reason_code=r["reason_code"])
            old = existing.get(key)
            line_ref = (f"{r['statement_id']}#{r['line_no']}" if r["line_no"] is not None
                        else None)
            if old is not None and old.last_on is not None and old.last_on > self.day:
                # A later date's statement found it last: a correction of this one neither
                # takes it over nor reopens it (nor, so, clears it when it no longer shows it).
                continue
            if old is not None and old.state != "open" and (
                    not domain.reopens(old.resolution, old.line_ref, line_ref)
                    or (old.resolution is not None and not self.trusted)):
                # Ops closed it on this evidence, or the statement is not taken at its word:
                # theirs stands.
                self.kept_closed += 1
                continue
            opened_on = old.business_date if old is not None and old.state == "open" else self.day
            terms = domain.case_terms(probe, opened_on, self.cal)
            amount_minor = r["statement_minor"] if r["statement_currency"] else r["ledger_minor"]
            values = dict(
                state="open", payment_id=r["payment_id"],
                line_ref=line_ref,
                amount_minor=amount_minor,
                currency=r["statement_currency"] or r["ledger_currency"],
                reason_code=r["reason_code"], action=terms.action, priority=terms.priority,
                detail=r["detail"], updated_at=self.now, closed_at=None, closed_note=None,
                last_run_pk=self.pk, due_on=terms.due_on, business_date=opened_on,
                resolution=None, resolved_by=None, resolved_at=None, proposal_pk=None)
            if old is None:
                new.append(dict(values, rail=self.rail, subject=key[0], kind=key[1],
                                opened_at=self.now, first_run_pk=self.pk))
            else:
                if old.state != "open":
                    values["opened_at"] = self.now
                changed.append(dict(values, pk=old.pk))
        await repo.insert_cases(self.conn, new)
        await repo.update_cases(self.conn, changed)
        self.opened += len(new)
        self.updated += len(changed)

    async def _changes(self) -> dict[str, Any]:
        """What this run says differently (items needing ops) from the newest run it replaces
        that was taken at its word (``baseline``)."""
        if self.baseline is None:
            return {}
        out: dict[str, Any] = {}
        for name, mine, theirs in (("opened", self.pk, self.baseline),
                                   ("closed", self.baseline, self.pk)):
            listed: list[str] = []
            changed_listed: list[str] = []
            count = after = changed = 0
            while True:
                page = await repo.kinds_by_subject(self.conn, mine, _CASE_KINDS, after=after,
                                                   limit=BATCH)
                if not page:
                    break
                after = page[-1].pk
                other = await repo.subjects_in(self.conn, theirs, _CASE_KINDS,
                                               [r.subject for r in page])
                for r in page:
                    kinds = other.get(r.subject, set())
                    if r.kind in kinds:
                        continue
                    if kinds and name == "opened":
                        changed += 1
                        if len(changed_listed) < _MAX_LISTED:
                            changed_listed.append(f"{r.subject}: {sorted(kinds)[0]} -> {r.kind}")
                        continue
                    if kinds:
                        continue  # counted as changed from the other side
                    count += 1
                    if len(listed) < _MAX_LISTED:
                        listed.append(f"{r.kind} {r.subject}")
            out[name] = {"count": count, "items": listed}
            if name == "opened":
                out["changed"] = {"count": changed, "items": changed_listed}
        return out

    def _summary(self, verdict: Verdict, problems: list[str], changes: dict[str, Any],
                 closed: int) -> dict[str, Any]:
        t = self.tally
        by_kind = {k: {cur: {"count": v[0], "ledger": amount(v[1], cur),
                             "statement": amount(v[2], cur)} for cur, v in by_cur.items()}
                   for k, by_cur in t.totals.items()}
        bridge = {cur: {"ledger": amount(b.ledger, cur), "statement": amount(b.statement, cur),
                        "explained": amount(b.explained, cur),
                        "residual": amount(b.residual, cur)} for cur, b in t.bridge.items()}
        return {
            "run_id": self.run_id, "rail": self.rail, "business_date": self.day.isoformat(),
            "rule_version": RULE_VERSION, "verdict": verdict.value,
            "statement_sha256": self.stmt.sha256 if self.stmt else None,
            "statements": self.scan.statement_ids[:_MAX_LISTED],
            "lines": self.lines, "items": self.seq,
            "counts": dict(sorted(t.counts.items())), "by_kind": by_kind, "bridge": bridge,
            "residual": {cur: b["residual"] for cur, b in bridge.items()},
            "proofs": {"ok": self.scan.proofs_ok, "failed": self.scan.proofs_failed,
                       "failures": self.scan.failed},
            "sequence_gaps": self.scan.gaps, "follows": self.follows,
            "problems": problems[:_MAX_LISTED],
            "settlement": {"days": self.settlement_days, "cutoff": self.cutoff.strftime("%H:%M"),
                           "holiday_subdivision": self.cal.subdivision},
            "supersedes": self.superseded.run_id if self.superseded else None,
            "changes": changes,
            "cases": {"opened": self.opened, "updated": self.updated, "closed": closed,
                      "kept_closed": self.kept_closed},
        }


# -- helpers ----------------------------------------------------------------------------------

def _taken_at_its_word(summary: dict[str, Any]) -> bool:
    """Was a stored run's statement acted on (from its summary.json)?"""
    return domain.taken_at_its_word(failed_proofs=summary["proofs"]["failed"],
                                    sequence_gaps=summary["sequence_gaps"])


async def _latest(conn: AsyncConnection, run_key: str) -> tuple[str, RowMapping | None]:
    """The run to answer for ``run_key``, and its key: the run itself, or the run that did
    its statement again after a payment it held was restored (and so on). A current run that
    held a payment since restored is not the answer: its key is returned with None, so the
    statement is done again (a new run superseding it, which moves what was held) instead of
    the held line staying unreconciled for ever. Same inputs, same answer: a run whose held
    payments are all still held is answered as it is.

    So is a current run whose statement did not follow the date before it (a sequence gap):
    once the run it would now be checked against is another than the one it was (``follows``:
    the late file that was missing has been reconciled), its statement is done again,
    checked against that one, instead of staying unproven for ever. (Which run, not which is
    newer: a row numbered before this run's may commit after this run read its predecessor.)
    """
    found = await repo.run_by_key(conn, run_key)
    while found is not None:
        after = _sha(f"{run_key}|after {found.run_id}".encode())
        again = await repo.run_by_key(conn, after)
        if again is not None:
            run_key, found = after, again
            continue
        if found.superseded_by_pk is not None:
            break
        held = await repo.held_payments_of(conn, found.pk)
        if held and len(await payments_evidence.mismatched(conn, held)) < len(held):
            return after, None
        summary = json.loads(found.summary or "{}")
        if summary.get("sequence_gaps"):
            before = await repo.previous_run(conn, found.rail, found.business_date)
            if before is not None and before.run_id != summary.get("follows"):
                return after, None
        break
    return run_key, found


def _opener(statement: Path | bytes) -> Callable[[], BinaryIO]:
    if isinstance(statement, bytes):
        return lambda: io.BytesIO(statement)
    path = statement

    def open_file() -> BinaryIO:
        try:
            return path.open("rb")
        except OSError as exc:
            raise InvalidMessageError("schema_violation", f"{path}: cannot be read "
                                      f"({exc.strerror or exc})") from None
    return open_file


def _checked_scan(adapter: RailAdapter, opener: Callable[[], BinaryIO],
                  stored_sha: list[str]) -> Iterator[StatementItem]:
    """Scan the statement; the bytes scanned must be the bytes stored (``stored_sha``, known
    once stored): a file that changed meanwhile fails the run, which then writes nothing."""
    with opener() as f:
        reader = _HashingReader(f)
        yield from adapter.scan_statement(io.BufferedReader(reader, CHUNK))
        while reader.read(CHUNK):
            pass  # hash what the scanner left unread (a trailer after the last element)
    if stored_sha and reader.sha.hexdigest() != stored_sha[0]:
        raise InvalidMessageError("schema_violation", "the statement changed while it was "
                                  "read: its bytes differ from those stored")


class _ScanThread:
    """A statement's scan, every step of it (its end too) on one thread of its own.

    lxml (the camt reader) frees a parser's nodes with the dictionary of the thread that made
    them: a scan advanced by turns on the default pool's threads, which may be any of them,
    aborted the process (``free(): invalid pointer``) on a statement with entries.
    """

    def __init__(self, items: Iterator[StatementItem]) -> None:
        self._items = items
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="statement-scan")

    async def _call(self, step: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, step)

    async def first(self) -> StatementItem | None:
        item: StatementItem | None = await self._call(lambda: next(self._items, None))
        return item

    async def batch(self, n: int) -> list[StatementItem]:
        items: list[StatementItem] = await self._call(lambda: list(islice(self._items, n)))
        return items

    async def close(self) -> None:
        """End the scan where it ran (a generator's ``close`` runs its cleanup there)."""
        try:
            close = getattr(self._items, "close", None)
            if close is not None:
                await self._call(close)
        finally:
            self._thread.shutdown(wait=False)


def _other_day(record: StatementRecord, day: date) -> str | None:
    """Why ``record`` is not a statement of ``day`` (None: it is, or it does not say)."""
    if record.business_date is None or record.business_date == day:
        return None
    return (f"the statement is of {record.business_date.isoformat()}, not of the business "
            f"date {day.isoformat()}")


def _find(line: StatementLine, by_id: Mapping[str, repo.Matched],
          by_ref: Mapping[str, repo.Matched]) -> repo.Matched | None:
    if line.end_to_end_id and line.end_to_end_id in by_id:
        return by_id[line.end_to_end_id]
    for key in (line.uetr, line.rail_reference):
        if key and key in by_ref:
            return by_ref[key]
    return None


def _ledger(row: repo.Matched | Row[Any] | RowMapping, cal: BusinessCalendar, cutoff: time,
            by_superseded: bool, state: str | None = None, *,
            dated: bool = True) -> LedgerPayment:
    """The payment as the rules read it; ``dated=False`` leaves out the day its payout
    settles, which only the ledger side and proposals read (a line's rules do not, and a
    line's lookup does not read it: ``Matched``)."""
    settles = None
    if dated:
        assert not isinstance(row, repo.Matched), "a line's lookup does not read paid_at"
        if row.paid_at is not None:
            settles = cal.settlement_day(row.paid_at, cutoff)
    return LedgerPayment(row.pk, row.payment_id, state or row.state, row.amount_minor,
                         row.currency, row.rail_reference, settles, by_superseded)


# An enum member's .value is a property call; a million-line run reads two per item.
_KIND_VALUE = {k: k.value for k in ItemKind}
_LINE_KIND_VALUE = {k: k.value for k in LineKind}
_SEQ_AT, _KIND_AT, _SUBJECT_AT = (ITEM_FIELDS.index(f) for f in ("seq", "kind", "subject"))


def _item_record(run_pk: int, seq: int, item: Item) -> tuple[Any, ...]:
    """The item as it is stored, in ``ITEM_FIELDS`` order."""
    line, p = item.line, item.payment
    if line is not None:
        statement_id: str | None = line.statement_id[:140]
        line_no: int | None = line.line_no
    elif item.line_ref:
        where, _, no = item.line_ref.rpartition("#")
        statement_id, line_no = where[:140], int(no)
    else:
        statement_id = line_no = None
    return (
        run_pk, seq, _KIND_VALUE[item.kind], item.subject[:200],
        p.pk if p else None, p.payment_id if p else None, statement_id, line_no,
        _LINE_KIND_VALUE[line.kind] if line else None,
        line.batch_ref[:140] if line and line.batch_ref else None,
        line.end_to_end_id[:140] if line and line.end_to_end_id else None,
        line.rail_reference[:140] if line and line.rail_reference else None,
        (line.value_on or line.booked_on) if line else None,
        item.ledger_minor, item.ledger_currency, item.statement_minor, item.statement_currency,
        item.reason_code[:8] if item.reason_code else None,
        " ".join(item.proposals) or None, item.detail[:1000])


def _line_of(r: RowMapping) -> StatementLine | None:
    """A stored keyless line, as ``propose`` reads it (None: a currency no payment has)."""
    if r.statement_currency not in MINOR_UNITS or r.value_on is None:
        return None
    return StatementLine(r.statement_id or "", r.line_no or 0,
                         Money(abs(r.statement_minor), r.statement_currency), credit=False,
                         booked_on=r.value_on, value_on=r.value_on,
                         rail_reference=r.rail_reference)


@contextlib.contextmanager
def _writing(folder: Path | None) -> Iterator[None]:
    """Report writes fail as ReportWriteError, naming the folder: raised as the OSError, a
    full disk would read as the database being unreachable."""
    try:
        yield
    except OSError as exc:
        raise ReportWriteError(f"report folder {folder}: {exc.strerror or exc}") from exc


class _ItemsCsv:
    """items.csv as it is produced, in item order: hashed, and written to a temporary file
    in ``report_dir`` if given (renamed into place once the run is committed).

    Raises:
        ReportWriteError: the folder or the disk refused a write.
    """

    def __init__(self, report_dir: Path | None) -> None:
        self.sha = hashlib.sha256()
        self.folder = report_dir
        self.tmp: Path | None = None
        self._f: BinaryIO | None = None
        if report_dir is not None:
            with _writing(report_dir):
                report_dir.mkdir(parents=True, exist_ok=True)
                # Its own name: runs of other rails may share the folder in one process.
                self.tmp = report_dir / f".items.csv.{uuid.uuid4().hex}.tmp"
                self._f = self.tmp.open("wb")
        self.add(csv_header())

    def add(self, data: bytes) -> None:
        self.sha.update(data)
        if self._f is not None:
            with _writing(self.folder):
                self._f.write(data)  # after close(), a ValueError: never a silent gap

    def close(self) -> tuple[str, Path | None]:
        """Its sha256 and its temporary file."""
        if self._f is not None and not self._f.closed:
            with _writing(self.folder):
                self._f.close()  # closed even if its last write fails
        return self.sha.hexdigest(), self.tmp

    def discard(self) -> None:
        try:
            self.close()
        except ReportWriteError:
            pass  # its last write failed again (the disk is still full): remove it anyway
        finally:
            if self.tmp is not None:
                _remove(self.tmp)


async def _items_csv(conn: AsyncConnection, run_pk: int,
                     report_dir: Path | None) -> tuple[str, Path | None]:
    """Stream the run's items.csv from its stored items: its sha256, and a temporary file of
    it in ``report_dir`` (renamed into place once the run is committed)."""
    out = _ItemsCsv(report_dir)
    try:
        after = 0
        while True:
            page = await repo.item_records_page(conn, run_pk, after=after, limit=5000)
            if not page:
                break
            out.add(csv_records(page))
            after = page[-1][_SEQ_AT]
        return out.close()
    except BaseException:
        out.discard()
        raise


async def _write_items(conn: AsyncConnection, run_pk: int, report_dir: Path) -> Path:
    _, tmp = await _items_csv(conn, run_pk, report_dir)
    assert tmp is not None
    return tmp


def _publish(report_dir: Path, summary: bytes, items_tmp: Path) -> None:
    """Rename the report into place. The folder's summary.json (an earlier report's, if any)
    goes first and this one's comes last, so a summary.json there always goes with the
    items.csv beside it. If a step fails, neither temporary file stays.

    Raises:
        ReportWriteError: the folder or the disk refused a step.
    """
    s_tmp = report_dir / f".summary.json.{uuid.uuid4().hex}.tmp"
    try:
        with _writing(report_dir):
            report_dir.mkdir(parents=True, exist_ok=True)
            s_tmp.write_bytes(summary)
            (report_dir / "summary.json").unlink(missing_ok=True)
            os.replace(items_tmp, report_dir / "items.csv")
            os.replace(s_tmp, report_dir / "summary.json")
    except BaseException:
        _remove(s_tmp)
        _remove(items_tmp)
        raise


def _remove(tmp: Path) -> None:
    """Remove a temporary report file, as cleanup: the error that made it needed is the one to
    report, not one of removing it."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


def _stored(run_id: str) -> str:
    return f"run {run_id} is stored: run it again to write its report"


def run_view(r: RowMapping) -> dict[str, Any]:
    summary = json.loads(r.summary) if r.summary else {}
    return {"run_id": r.run_id, "rail": r.rail, "business_date": r.business_date.isoformat(),
            "rule_version": r.rule_version, "verdict": r.verdict, "items": r["items"],
            "counts": summary.get("counts", {}), "supersedes": summary.get("supersedes"),
            "superseded": r.superseded_by_pk is not None,
            "started_at": iso_millis(r.started_at), "finished_at": iso_millis(r.finished_at)}


def item_view(r: RowMapping) -> dict[str, Any]:
    return {"seq": r.seq, "kind": r.kind, "subject": r.subject, "payment_id": r.payment_id,
            "statement_id": r.statement_id, "line_no": r.line_no, "line_kind": r.line_kind,
            "batch_ref": r.batch_ref, "end_to_end_id": r.end_to_end_id,
            "rail_reference": r.rail_reference,
            "value_on": r.value_on.isoformat() if r.value_on else None,
            "ledger": ({"amount": amount(r.ledger_minor, r.ledger_currency),
                        "currency": r.ledger_currency} if r.ledger_currency else None),
            "statement": ({"amount": amount(r.statement_minor, r.statement_currency),
                           "currency": r.statement_currency} if r.statement_currency else None),
            "reason_code": r.reason_code,
            "proposals": r.proposals.split() if r.proposals else [], "detail": r.detail}


def case_view(r: RowMapping, today: date) -> dict[str, Any]:
    return {"id": r.pk, "rail": r.rail, "kind": r.kind, "state": r.state,
            "subject": r.subject, "payment_id": r.payment_id, "line_ref": r.line_ref,
            "amount": {"amount": amount(r.amount_minor, r.currency), "currency": r.currency},
            "reason_code": r.reason_code, "action": r.action, "priority": r.priority,
            "opened_at": iso_millis(r.opened_at), "age_days": (today - r.business_date).days,
            "due_on": r.due_on.isoformat(), "overdue": r.state == "open" and today > r.due_on,
            "detail": r.detail, "closed_at": iso_millis(r.closed_at) if r.closed_at else None,
            "closed_note": r.closed_note,
            "resolution": ({"outcome": r.resolution, "by": r.resolved_by,
                            "at": iso_millis(r.resolved_at) if r.resolved_at else None,
                            "proposal_id": r.proposal_pk} if r.resolution else None)}


async def reconcile(hub_or_service: Any, rail: str, day: date,
                    statement: Path | bytes | None = None, report_dir: Path | None = None, *,
                    give_up: bool = False) -> RunResult:
    """Run (or find) the reconciliation of ``rail`` for ``day``: the scheduler's entry point.

    Safe when several processes call it for the same rail and day at once: one run is made
    and the others return it.

    Raises:
        TransientDeliveryError: the rail has no statement for ``day`` yet (retry later).
        PermanentDeliveryError: the rail refused the request (with ``give_up``: recorded).
        InvalidMessageError: unknown rail, unreadable file, not this rail's statement.
    """
    svc: ReconciliationService = getattr(hub_or_service, "reconciliation", hub_or_service)
    return await svc.run(rail, day, statement, report_dir, give_up=give_up)
