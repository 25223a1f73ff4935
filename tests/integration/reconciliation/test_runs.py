"""Reconciliation runs on a real database (SQLite and PostgreSQL): every item kind and
verdict, payments reconciled or returned, cases, idempotent re-runs, superseding runs."""

from __future__ import annotations

import errno
import json
import logging
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.composition import Hub
from gateway.errors import (
    InvalidMessageError,
    PermanentDeliveryError,
    ReportWriteError,
    TransientDeliveryError,
)
from gateway.reconciliation.service import ReconciliationService
from gateway.storage.tables import (
    payment_discrepancies,
    payment_events,
    payments,
    recon_cases,
    recon_items,
    recon_runs,
    recon_statements,
    statement_blobs,
)
from tests.support.recon import ScriptedRail, add_payment, bad, line, proof, record, statement

pytestmark = pytest.mark.anyio
DAY = date(2026, 12, 1)
OLD = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


async def _states(hub: Hub) -> dict[str, str]:
    async with hub.engine.connect() as conn:
        return {r.payment_id: r.state for r in await conn.execute(
            select(payments.c.payment_id, payments.c.state))}


async def _kinds(hub: Hub, run_pk: int) -> dict[str, str]:
    async with hub.engine.connect() as conn:
        return {f"{r.subject}": r.kind for r in await conn.execute(
            select(recon_items.c.subject, recon_items.c.kind)
            .where(recon_items.c.run_pk == run_pk).order_by(recon_items.c.seq))}


async def _dump(hub: Hub) -> dict[str, list[tuple[object, ...]]]:
    """Every reconciliation-related table's rows, to compare a database before and after."""
    out = {}
    async with hub.engine.connect() as conn:
        for t in (payments, payment_events, recon_statements, statement_blobs, recon_runs,
                  recon_items, recon_cases):
            cols = [c for c in t.c]
            out[t.name] = [tuple(r) for r in await conn.execute(
                select(*cols).order_by(*t.primary_key.columns))]
    return out


async def _every_kind(hub: Hub, *, guess: bool = True) -> bytes:
    """A statement with a line of every kind; ``guess``: a payment the keyless line is
    proposed for (a proposal changes that line's item after it is written)."""
    uow = hub.uow
    await add_payment(uow, "P-MATCH")
    await add_payment(uow, "P-AMOUNT")
    await add_payment(uow, "P-CUR")
    await add_payment(uow, "P-DUP")
    await add_payment(uow, "P-RET", amount="50.00")
    await add_payment(uow, "P-REV", amount="60.00")
    await add_payment(uow, "P-FAILED", state="failed")
    await add_payment(uow, "P-NOTPAID")
    await add_payment(uow, "P-PENDING")
    await add_payment(uow, "P-MISSING", paid_at=OLD)
    if guess:
        await add_payment(uow, "P-GUESS", amount="77.00")
    await add_payment(uow, "P-REF", rail_reference="MT-REF-9")
    return statement([
        record(sequence=7), line(1, e2e="P-MATCH"), line(2, "101.00", e2e="P-AMOUNT"),
        line(3, "100.00", "IDR", e2e="P-CUR"), line(4, e2e="P-DUP"), line(5, e2e="P-DUP"),
        line(6, "50.00", e2e="P-RET"), line(7, "50.00", e2e="P-RET", kind="returned",
                                           credit=True, reason="AC04"),
        line(8, "60.00", e2e="P-REV"), line(9, "60.00", e2e="P-REV", kind="reversal",
                                           credit=True, reason="MS03"),
        line(10, e2e="P-FAILED"), line(11, e2e="P-NOTPAID", kind="not_paid"),
        line(12, "77.00"), line(13, "2.50", kind="fee"), line(14, "1.25", kind="fx"),
        line(15, ref="MT-REF-9"), bad(16), proof(True)])


async def test_every_item_kind_is_classified_and_acted_on(
        hub: Hub, recon: ReconciliationService, tmp_path: Path) -> None:
    result = await recon.run("fake", DAY, await _every_kind(hub), tmp_path)
    kinds = await _kinds(hub, result.pk)
    assert kinds["P-MATCH"] == "matched" and kinds["P-REF"] == "matched"
    assert kinds["P-AMOUNT"] == "amount_mismatch"
    assert kinds["P-CUR"] == "currency_mismatch"
    assert kinds["P-DUP"] == "duplicate_line"  # the second line; the first matched
    assert kinds["P-RET"] == "returned" and kinds["P-REV"] == "reversed"
    assert kinds["P-FAILED"] == "state_mismatch" and kinds["P-NOTPAID"] == "state_mismatch"
    assert kinds["P-PENDING"] == "pending" and kinds["P-MISSING"] == "missing_on_statement"
    assert kinds["line:S1#12"] == "unknown_line" and kinds["line:S1#13"] == "fee"
    assert kinds["line:S1#14"] == "fx" and kinds["line:S1#16"] == "quarantined"
    assert kinds["P-GUESS"] == "pending"  # never auto-matched to the keyless line
    s = result.summary
    assert s["verdict"] == "incomplete" and "1 line(s) quarantined" in s["problems"]
    assert s["lines"] == 15 and s["items"] == 19  # 15 lines, 1 bad, 3 expected
    async with hub.engine.connect() as conn:
        guess = (await conn.execute(select(recon_items.c.proposals).where(
            recon_items.c.run_pk == result.pk, recon_items.c.line_no == 12))).scalar_one()
    assert guess == "P-GUESS"  # proposed, not matched
    states = await _states(hub)
    assert states["P-MATCH"] == "reconciled" and states["P-REF"] == "reconciled"
    assert states["P-DUP"] == "reconciled"
    assert states["P-RET"] == "returned" and states["P-REV"] == "returned"
    assert states["P-AMOUNT"] == "paid" and states["P-PENDING"] == "paid"
    async with hub.engine.connect() as conn:
        ev = (await conn.execute(select(payment_events.c.cause, payment_events.c.detail)
                                 .join(payments, payments.c.pk == payment_events.c.payment_pk)
                                 .where(payments.c.payment_id == "P-MATCH")
                                 .order_by(payment_events.c.pk.desc()))).first()
        assert ev is not None and ev.cause == "reconciled" and result.run_id in ev.detail
        cases = {(r.subject, r.kind): r for r in (await conn.execute(select(recon_cases)))
                 .mappings()}
    assert ("P-MATCH", "matched") not in cases and ("P-PENDING", "pending") not in cases
    ret = cases[("P-RET", "returned")]
    assert ret.action == "new_beneficiary_details" and ret.reason_code == "AC04"
    assert cases[("P-FAILED", "state_mismatch")].priority == "high"
    assert cases[("P-AMOUNT", "amount_mismatch")].priority == "high"  # overpaid
    assert cases[("P-MISSING", "missing_on_statement")].due_on == date(2026, 12, 3)
    assert cases[("line:S1#16", "quarantined")].state == "open"
    assert len(cases) == 10
    assert (tmp_path / "summary.json").read_bytes() == result.summary_bytes
    rows = (tmp_path / "items.csv").read_text().splitlines()
    assert len(rows) == 20 and rows[0].startswith("seq,kind,subject")


@pytest.mark.parametrize("guess", [True, False], ids=["proposed", "no-proposal"])
async def test_a_rerun_changes_nothing_and_rewrites_the_same_bytes(
        hub: Hub, recon: ReconciliationService, tmp_path: Path, guess: bool) -> None:
    """The run makes items.csv as it numbers its items (or, once a proposal has changed an
    item, from the stored items); a re-run makes it from the stored items: the same bytes."""
    data = await _every_kind(hub, guess=guess)
    first = await recon.run("fake", DAY, data, tmp_path / "a")
    before = await _dump(hub)
    again = await recon.run("fake", DAY, data, tmp_path / "b")
    assert again.reused and again.run_id == first.run_id
    assert await _dump(hub) == before
    for name in ("summary.json", "items.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    import hashlib
    assert hashlib.sha256((tmp_path / "b" / "items.csv").read_bytes()).hexdigest() == \
        first.items_csv_sha256


@pytest.mark.parametrize("guess", [True, False], ids=["proposed", "no-proposal"])
@pytest.mark.parametrize("fails", ["finish_run", "commit"])
async def test_a_failed_run_leaves_no_report_file_behind(
        hub: Hub, recon: ReconciliationService, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, guess: bool, fails: str) -> None:
    """items.csv is made while the run goes; a run that fails after it was made (writing the
    run, or committing) must not leave it, or half of it, in the report folder."""
    from gateway.reconciliation import repository as repo
    from gateway.storage.uow import UnitOfWork

    data = await _every_kind(hub, guess=guess)

    out = tmp_path / "out"
    commit = UnitOfWork.commit

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"{fails} failed")

    async def commit_fails_once_reporting(uow: UnitOfWork) -> None:
        if out.exists():  # the run's own commit: it has begun its report (storing did not)
            raise RuntimeError("commit failed")
        await commit(uow)

    if fails == "finish_run":
        monkeypatch.setattr(repo, "finish_run", broken)
    else:
        monkeypatch.setattr(UnitOfWork, "commit", commit_fails_once_reporting)
    with pytest.raises(RuntimeError, match=f"{fails} failed"):
        await recon.run("fake", DAY, data, out)
    assert out.exists() and [p.name for p in out.glob("*")] == []


@pytest.mark.parametrize("fails", ["reading the run back", "renaming items.csv",
                                   "renaming summary.json"])
async def test_a_committed_run_whose_report_fails_leaves_no_temporary_file(
        hub: Hub, recon: ReconciliationService, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, fails: str) -> None:
    """The report is published only once the run is committed. If reading the run back or
    renaming a file then fails, the run stands, no temporary file stays in the report
    folder, an earlier report's summary.json is not left beside this run's items.csv (nor
    this one's without it), and asking again rewrites the report from the stored run."""
    from gateway.reconciliation import repository as repo
    from gateway.reconciliation import service

    data = await _every_kind(hub, guess=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text('{"run_id": "an earlier run"}')
    (out / "items.csv").write_text("an earlier run's items\n")
    replace = os.replace

    async def read_back_fails(*args: object, **kwargs: object) -> None:
        raise RuntimeError("reading the run back failed")

    def replace_fails(src: Path, dst: Path) -> None:
        if Path(dst) == out / fails.removeprefix("renaming "):
            raise OSError(f"{fails} failed")
        replace(src, dst)

    with monkeypatch.context() as m:
        if fails == "reading the run back":
            m.setattr(repo, "run_by_pk", read_back_fails)
        else:
            m.setattr(service.os, "replace", replace_fails)
        with pytest.raises((RuntimeError, ReportWriteError), match=f"{fails} failed") as err:
            await recon.run("fake", DAY, data, out)
        left = {p.name: p.read_text() for p in out.glob("*")}
    if fails == "reading the run back":  # nothing published: the earlier pair stays as it was
        assert left == {"summary.json": '{"run_id": "an earlier run"}',
                        "items.csv": "an earlier run's items\n"}
    else:
        assert str(err.value).startswith(f"report folder {out}: ")
        assert str(err.value).endswith("is stored: run it again to write its report")
        assert list(left) == ["items.csv"]  # the earlier one or this run's: never a summary
    again = await recon.run("fake", DAY, data, out)
    assert again.reused
    assert sorted(p.name for p in out.glob("*")) == ["items.csv", "summary.json"]
    assert (out / "summary.json").read_bytes() == again.summary_bytes
    assert "an earlier run" not in (out / "items.csv").read_text()


async def test_a_rerun_whose_report_fails_says_the_run_is_stored(
        hub: Hub, recon: ReconciliationService, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Asking again for a stored run rewrites its report; if the folder refuses it, the error
    says the run is there and leaves no temporary file."""
    from gateway.reconciliation import service

    data = await _every_kind(hub, guess=False)
    first = await recon.run("fake", DAY, data)
    out = tmp_path / "out"

    def replace_fails(src: Path, dst: Path) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    with monkeypatch.context() as m:
        m.setattr(service.os, "replace", replace_fails)
        with pytest.raises(ReportWriteError) as err:
            await recon.run("fake", DAY, data, out)
    assert str(err.value) == (f"report folder {out}: Read-only file system; run "
                              f"{first.run_id} is stored: run it again to write its report")
    assert [p.name for p in out.glob("*")] == []


async def test_a_report_the_disk_refuses_during_the_run_stores_nothing(
        hub: Hub, recon: ReconciliationService, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """items.csv is written while the run goes: a write the disk refuses (full) fails the
    run as a ReportWriteError saying the run was not stored, not as a bare OSError (the CLI
    would blame it on the database); no temporary file stays and no payment moved."""
    from gateway.reconciliation import service

    data = await _every_kind(hub, guess=False)
    before = await _dump(hub)
    out = tmp_path / "out"
    init = service._ItemsCsv.__init__

    class FullDisk:
        """The temporary file, on a disk that fills up once the items come."""

        def __init__(self, f: Any) -> None:
            self.f = f

        def write(self, data: bytes) -> int:
            if b"P-MATCH" in data:  # the items, not the header written on opening
                raise OSError(errno.ENOSPC, "No space left on device")
            return int(self.f.write(data))

        @property
        def closed(self) -> bool:
            return bool(self.f.closed)

        def close(self) -> None:
            self.f.close()

    def opened(self: Any, report_dir: Path | None) -> None:
        init(self, report_dir)
        if self._f is not None:
            self._f = FullDisk(self._f)

    with monkeypatch.context() as m:
        m.setattr(service._ItemsCsv, "__init__", opened)
        with pytest.raises(ReportWriteError) as err:
            await recon.run("fake", DAY, data, out)
    assert str(err.value) == (f"report folder {out}: No space left on device; the run was "
                              "not stored")
    assert [p.name for p in out.glob("*")] == []
    after = await _dump(hub)
    kept = ("recon_statements", "statement_blobs")  # stored on arrival, before the run
    assert {k: v for k, v in after.items() if k not in kept} == {
        k: v for k, v in before.items() if k not in kept}


async def test_balanced_when_everything_is_explained(
        hub: Hub, recon: ReconciliationService) -> None:
    await add_payment(hub.uow, "P-1")
    await add_payment(hub.uow, "P-2", amount="20.00")
    await add_payment(hub.uow, "P-3", amount="5.00")  # pending: paid today
    data = statement([record(sequence=1), line(1, e2e="P-1"), line(2, "20.00", e2e="P-2",
                                                                  batch="B1"),
                      line(3, "0.50", kind="fee"), proof(True, "batch")])
    # P-3 is paid today and not on the statement: pending, within T+1.
    r = await recon.run("fake", DAY, data)
    assert r.verdict == "balanced", r.summary
    assert r.summary["counts"] == {"fee": 1, "matched": 2, "pending": 1}
    b = r.summary["bridge"]["MYR"]
    assert b == {"ledger": "125.00", "statement": "120.50", "explained": "4.50",
                 "residual": "0.00"}


async def test_discrepancies_verdict_and_a_failed_proof_is_incomplete(
        hub: Hub, recon: ReconciliationService) -> None:
    await add_payment(hub.uow, "P-1")
    r = await recon.run("fake", DAY, statement([record(), line(1, "99.00", e2e="P-1")]))
    assert r.verdict == "discrepancies"
    assert r.summary["residual"] == {"MYR": "1.00"}
    r2 = await recon.run("fake", date(2026, 12, 2), statement([
        record(day="2026-12-02"), proof(False, "record_count")]))
    assert r2.verdict == "incomplete"
    assert any("record_count" in p for p in r2.summary["problems"])


async def test_a_sequence_gap_with_the_previous_statement_is_incomplete(
        hub: Hub, recon: ReconciliationService) -> None:
    r1 = await recon.run("fake", DAY, statement([record(sequence=41)]))
    assert r1.verdict == "balanced"
    r2 = await recon.run("fake", date(2026, 12, 2), statement([record(sequence=42,
                                                                      day="2026-12-02")]))
    assert r2.verdict == "balanced"
    r3 = await recon.run("fake", date(2026, 12, 3), statement([record(sequence=44,
                                                                      day="2026-12-03")]))
    assert r3.verdict == "incomplete"
    assert "account ACC-1: sequence 44 does not follow 42" in r3.summary["problems"]


async def test_a_run_with_a_gap_is_done_again_once_the_date_before_is_reconciled(
        hub: Hub, recon: ReconciliationService) -> None:
    # 1 December's file came late: 2 December's, run first, follows 30 November's (a gap)
    # and moves nothing. Same inputs, same answer, until 1 December is reconciled: then
    # running 2 December's file again is a new run, checked against 1 December, that
    # supersedes the first and moves what it proves.
    await recon.run("fake", date(2026, 11, 30), statement([record(sequence=41,
                                                                   day="2026-11-30")]))
    await add_payment(hub.uow, "P-2")
    d2 = statement([record(sequence=43, day="2026-12-02"), line(1, e2e="P-2", day="2026-12-02")])
    first = await recon.run("fake", date(2026, 12, 2), d2)
    assert first.verdict == "incomplete" and await _states(hub) == {"P-2": "paid"}
    assert "account ACC-1: sequence 43 does not follow 41" in first.summary["problems"]
    assert first.summary["sequence_gaps"] == 1
    nov30 = (await recon.runs("fake", date(2026, 11, 30), None, 1))["runs"][0]["run_id"]
    assert first.summary["follows"] == nov30
    assert (await recon.run("fake", date(2026, 12, 2), d2)).run_id == first.run_id
    await recon.run("fake", DAY, statement([record(sequence=42)]))
    again = await recon.run("fake", date(2026, 12, 2), d2)
    assert not again.reused and again.run_id != first.run_id
    assert again.verdict == "balanced" and again.summary["supersedes"] == first.run_id
    assert await _states(hub) == {"P-2": "reconciled"}
    same = await recon.run("fake", date(2026, 12, 2), d2)
    assert same.reused and same.run_id == again.run_id


async def test_a_statement_not_there_yet_raises_and_a_give_up_is_incomplete(
        hub: Hub, recon: ReconciliationService, scripted: ScriptedRail) -> None:
    await add_payment(hub.uow, "P-1", paid_at=OLD)
    with pytest.raises(TransientDeliveryError):
        await recon.run("fake", DAY)
    r = await recon.run("fake", DAY, give_up=True)
    assert r.verdict == "incomplete" and r.summary["counts"] == {"missing_on_statement": 1}
    scripted.served[DAY] = statement([record(), line(1, e2e="P-1")])
    fetched = await recon.run("fake", DAY)  # the late file supersedes the give-up
    assert fetched.verdict == "balanced" and fetched.summary["supersedes"] == r.run_id


async def test_a_give_up_records_why_there_is_no_statement(
        hub: Hub, recon: ReconciliationService, scripted: ScriptedRail) -> None:
    # A rail that refuses the request (its credentials, say) is not "late": asking raises
    # its refusal, and the final give-up records the run all the same, saying why.
    scripted.refusals[DAY] = PermanentDeliveryError("scripted statement: HTTP 401 unauthorized")
    with pytest.raises(PermanentDeliveryError):
        await recon.run("fake", DAY)
    r = await recon.run("fake", DAY, give_up=True)
    assert r.verdict == "incomplete"
    assert r.summary["problems"] == [
        "no statement: scripted statement: HTTP 401 unauthorized"]
    late = await recon.run("fake", date(2026, 11, 30), give_up=True)
    assert late.summary["problems"] == [
        "no statement: scripted statement 2026-11-30: not available yet"]


async def test_bad_input_is_refused_and_stores_nothing(
        hub: Hub, recon: ReconciliationService, tmp_path: Path) -> None:
    with pytest.raises(InvalidMessageError, match="not configured"):
        await recon.run("nope", DAY, b"")
    with pytest.raises(InvalidMessageError, match="not a scripted statement"):
        await recon.run("fake", DAY, b"date,amount\n2026-12-01,1.00\n")
    with pytest.raises(InvalidMessageError, match="cannot be read"):
        await recon.run("fake", DAY, tmp_path / "absent.jsonl")
    async with hub.engine.connect() as conn:
        assert (await conn.execute(select(recon_statements))).first() is None


async def test_a_corrected_statement_supersedes_and_reports_what_changed(
        hub: Hub, recon: ReconciliationService) -> None:
    await add_payment(hub.uow, "P-1")
    await add_payment(hub.uow, "P-2", amount="20.00")
    first = await recon.run("fake", DAY, statement([
        record(), line(1, e2e="P-1"), line(2, "21.00", e2e="P-2"), line(3, "9.00")]))
    assert first.verdict == "discrepancies"
    fixed = await recon.run("fake", DAY, statement([
        record(), line(1, e2e="P-1"), line(2, "20.00", e2e="P-2")]))
    assert fixed.verdict == "balanced" and fixed.summary["supersedes"] == first.run_id
    changes = fixed.summary["changes"]
    assert changes["closed"]["count"] == 2 and changes["opened"]["count"] == 0
    async with hub.engine.connect() as conn:
        old = (await conn.execute(select(recon_runs.c.superseded_by_pk).where(
            recon_runs.c.pk == first.pk))).scalar_one()
        cases = (await conn.execute(select(recon_cases.c.state, recon_cases.c.closed_note)))\
            .all()
    assert old == fixed.pk
    assert cases and all(c.state == "closed" and c.closed_note ==
                         f"cleared by run {fixed.run_id}" for c in cases)
    assert (await _states(hub)) == {"P-1": "reconciled", "P-2": "reconciled"}


async def _items(hub: Hub, run_pk: int) -> list[tuple[str, str, str]]:
    async with hub.engine.connect() as conn:
        return [(r.subject, r.kind, r.detail) for r in await conn.execute(
            select(recon_items.c.subject, recon_items.c.kind, recon_items.c.detail)
            .where(recon_items.c.run_pk == run_pk).order_by(recon_items.c.seq))]


async def test_a_second_correction_classifies_as_if_the_runs_it_replaces_never_were(
        hub: Hub, recon: ReconciliationService) -> None:
    """Every earlier run of the rail and date is replaced, not only the last one: a payout
    the first run reconciled and the second showed otherwise (or not at all) is the same
    booking when the third shows it, never a second payout for ops to recall; and one the
    third no longer shows is still an expected payment, not dropped."""
    await add_payment(hub.uow, "P-1")  # matched, amount_mismatch, matched
    await add_payment(hub.uow, "P-2")  # matched, not shown, matched
    await add_payment(hub.uow, "P-3")  # matched, amount_mismatch, not shown
    first = await recon.run("fake", DAY, statement([
        record(), line(1, e2e="P-1"), line(2, e2e="P-2"), line(3, e2e="P-3")]))
    assert first.summary["counts"] == {"matched": 3}
    second = await recon.run("fake", DAY, statement([
        record(), line(1, "101.00", e2e="P-1"), line(3, "101.00", e2e="P-3")]))
    assert await _kinds(hub, second.pk) == {"P-1": "amount_mismatch", "P-3": "amount_mismatch",
                                            "P-2": "pending"}
    third = await recon.run("fake", DAY, statement([
        record(), line(1, e2e="P-1"), line(2, e2e="P-2")]))
    assert third.summary["supersedes"] == second.run_id
    assert await _kinds(hub, third.pk) == {"P-1": "matched", "P-2": "matched",
                                           "P-3": "pending"}
    assert third.verdict == "balanced"
    changes = third.summary["changes"]
    assert changes["closed"] == {"count": 2, "items": ["amount_mismatch P-1",
                                                       "amount_mismatch P-3"]}
    assert changes["opened"]["count"] == 0 and changes["changed"]["count"] == 0
    async with hub.engine.connect() as conn:
        cases = (await conn.execute(select(recon_cases.c.subject, recon_cases.c.state,
                                           recon_cases.c.closed_note)
                                    .order_by(recon_cases.c.subject))).all()
    assert [tuple(c) for c in cases] == [
        ("P-1", "closed", f"cleared by run {third.run_id}"),
        ("P-3", "closed", f"cleared by run {third.run_id}")]
    assert await _states(hub) == {"P-1": "reconciled", "P-2": "reconciled",
                                  "P-3": "reconciled"}


async def test_a_payout_booked_on_another_days_statement_stays_a_duplicate_when_corrected(
        hub: Hub, recon: ReconciliationService) -> None:
    """Only runs of the same rail and date are replaced: a payout reconciled on an earlier
    day's statement and shown again is a second booking in every correction of the later
    day, and it is not that day's expected payment either."""
    day2 = date(2026, 12, 2)
    await add_payment(hub.uow, "P-OLD")
    await add_payment(hub.uow, "P-GONE")
    await add_payment(hub.uow, "P-NEW", paid_at=datetime(2026, 12, 2, 2, 0, tzinfo=UTC))
    await recon.run("fake", DAY, statement([record(), line(1, e2e="P-OLD"),
                                            line(2, e2e="P-GONE")]))

    def day2_statement(new: str) -> bytes:
        return statement([record(day="2026-12-02"), line(1, e2e="P-OLD", day="2026-12-02"),
                          line(2, new, e2e="P-NEW", day="2026-12-02")])

    earlier = ("P-OLD", "duplicate_line", "the payout was already booked on an earlier "
               "statement")
    # The third has other bytes than the first (the same bytes would find the first run).
    runs = [await recon.run("fake", day2, day2_statement(amount) + end)
            for amount, end in (("100.00", b""), ("101.00", b""), ("100.00", b"\n"))]
    assert runs[2].summary["supersedes"] == runs[1].run_id
    assert [(await _items(hub, r.pk))[0] for r in runs] == [earlier] * 3
    assert [(await _kinds(hub, r.pk))["P-NEW"] for r in runs] == [
        "matched", "amount_mismatch", "matched"]
    assert ["P-GONE" in await _kinds(hub, r.pk) for r in runs] == [False] * 3
    assert runs[2].summary["changes"]["closed"]["items"] == ["amount_mismatch P-NEW"]


async def test_returns_restated_by_corrections_are_classified_as_on_a_first_run(
        hub: Hub, recon: ReconciliationService) -> None:
    """A return re-stated by a correction is the same return (the payment is already
    returned, nothing moves), with the payout before it matched; a return first shown by a
    correction of a payout the replaced run reconciled returns it."""
    day2 = date(2026, 12, 2)
    await add_payment(hub.uow, "P-RET")  # payout and return, then both again
    await add_payment(hub.uow, "P-LATE")  # payout; then payout and return
    await add_payment(hub.uow, "P-DAY1")  # reconciled on day 1, returned on day 2
    await recon.run("fake", DAY, statement([record(), line(1, e2e="P-DAY1")]))

    def back(n: int, e2e: str) -> dict[str, Any]:
        return line(n, e2e=e2e, kind="returned", credit=True, reason="AC04", day="2026-12-02")

    def out(n: int, e2e: str) -> dict[str, Any]:
        return line(n, e2e=e2e, day="2026-12-02")

    rec = record(day="2026-12-02")
    first = await recon.run("fake", day2, statement([
        rec, out(1, "P-RET"), back(2, "P-RET"), out(3, "P-LATE"), back(4, "P-DAY1")]))
    assert await _states(hub) == {"P-RET": "returned", "P-LATE": "reconciled",
                                  "P-DAY1": "returned"}
    full = statement([rec, out(1, "P-RET"), back(2, "P-RET"), out(3, "P-LATE"),
                      back(4, "P-LATE"), back(5, "P-DAY1")])
    second = await recon.run("fake", day2, full)
    third = await recon.run("fake", day2, full + b"\n")  # the same lines, other bytes
    for run in (first, second, third):
        assert not run.reused
    expected = [("P-RET", "matched"), ("P-RET", "returned"), ("P-LATE", "matched"),
                ("P-LATE", "returned"), ("P-DAY1", "returned")]
    for run in (second, third):
        assert [(s, k) for s, k, _ in await _items(hub, run.pk)] == expected
    assert second.summary["changes"]["opened"]["items"] == ["returned P-LATE"]
    assert third.summary["changes"] == {"opened": {"count": 0, "items": []},
                                        "changed": {"count": 0, "items": []},
                                        "closed": {"count": 0, "items": []}}
    assert await _states(hub) == {"P-RET": "returned", "P-LATE": "returned",
                                  "P-DAY1": "returned"}


async def test_cases_are_updated_not_duplicated_by_later_runs(
        hub: Hub, recon: ReconciliationService) -> None:
    await add_payment(hub.uow, "P-OLD", paid_at=OLD)
    await recon.run("fake", DAY, statement([record()]))
    await recon.run("fake", date(2026, 12, 2), statement([record(day="2026-12-02")]))
    async with hub.engine.connect() as conn:
        rows = (await conn.execute(select(recon_cases))).mappings().all()
    assert len(rows) == 1 and rows[0]["first_run_pk"] != rows[0]["last_run_pk"]
    assert rows[0]["business_date"] == DAY  # its age counts from when it was first found
    await recon.run("fake", date(2026, 12, 3), statement([record(day="2026-12-03"),
                                                          line(1, e2e="P-OLD")]))
    async with hub.engine.connect() as conn:
        row = (await conn.execute(select(recon_cases))).mappings().one()
    assert row["state"] == "closed" and row["closed_note"].startswith("cleared by run")


async def test_a_return_after_reconciled_tells_the_partner(
        hub: Hub, recon: ReconciliationService) -> None:
    await add_payment(hub.uow, "P-1", partner_id="ID-BPJSTK", claim_ref="CLM-1")
    await recon.run("fake", DAY, statement([record(), line(1, e2e="P-1")]))
    assert (await _states(hub))["P-1"] == "reconciled"
    r = await recon.run("fake", date(2026, 12, 2), statement([
        record(day="2026-12-02"), line(1, e2e="P-1", kind="returned", credit=True,
                                       reason="AC06", day="2026-12-02")]))
    assert r.summary["counts"] == {"returned": 1}
    assert (await _states(hub))["P-1"] == "returned"
    from gateway.storage.tables import messages
    async with hub.engine.connect() as conn:
        out = (await conn.execute(select(messages.c.type, messages.c.canonical,
                                         messages.c.wire).where(
            messages.c.direction == "out"))).all()
    notices = [json.loads(m.canonical or m.wire)["payload"] for m in out
               if m.type == "payment.notice"]
    assert notices and notices[-1]["status"] == "returned" and "AC06" in notices[-1]["reason"]


async def _notices(hub: Hub) -> list[dict[str, Any]]:
    from gateway.storage.tables import messages
    async with hub.engine.connect() as conn:
        out = (await conn.execute(select(messages.c.type, messages.c.canonical,
                                         messages.c.wire).where(
            messages.c.direction == "out"))).all()
    return [json.loads(m.canonical or m.wire)["payload"] for m in out
            if m.type == "payment.notice"]


@pytest.mark.parametrize("fault", ["proof", "sequence"])
async def test_an_unproven_statement_moves_nothing_and_its_correction_does(
        hub: Hub, recon: ReconciliationService, fault: str) -> None:
    # A statement whose balance does not add up, or which skips a sequence number, is not
    # trusted: its return tells no partner and its match reconciles nothing, until a
    # statement that proves itself says the same (a corrected file supersedes the run).
    await recon.run("fake", date(2026, 11, 30), statement([record(sequence=6,
                                                                   day="2026-11-30")]))
    await add_payment(hub.uow, "P-1", partner_id="ID-BPJSTK", claim_ref="CLM-1")
    await add_payment(hub.uow, "P-2")
    good = [line(1, e2e="P-1"), line(2, e2e="P-1", kind="returned", credit=True,
                                      reason="AC06"), line(3, e2e="P-2")]
    unproven = (statement([record(sequence=7), *good, proof(False, "balance")])
                if fault == "proof" else statement([record(sequence=9), *good, proof(True)]))
    r = await recon.run("fake", DAY, unproven)
    assert r.verdict == "incomplete"
    assert r.summary["counts"] == {"matched": 2, "returned": 1}
    assert ("nothing was moved on this statement's word: 2 payment(s) it matched stay paid "
            "and 1 it returned are not returned") in r.summary["problems"]
    assert await _states(hub) == {"P-1": "paid", "P-2": "paid"}
    assert await _notices(hub) == []
    # Run again, the same: nothing moves the second time either.
    assert (await recon.run("fake", DAY, unproven)).reused
    assert await _states(hub) == {"P-1": "paid", "P-2": "paid"}

    r2 = await recon.run("fake", DAY, statement([record(sequence=7), *good, proof(True)]))
    assert r2.verdict == "discrepancies" and r2.summary["supersedes"] == r.run_id  # the return
    assert not any("nothing was moved" in p for p in r2.summary["problems"])
    assert await _states(hub) == {"P-1": "returned", "P-2": "reconciled"}
    notices = await _notices(hub)
    assert [n["status"] for n in notices] == ["returned"] and "AC06" in notices[0]["reason"]


@pytest.mark.parametrize("proves", [True, False], ids=["proven", "unproven"])
async def test_a_statement_is_read_once_unless_its_proofs_fail(
        hub: Hub, recon: ReconciliationService, scripted: ScriptedRail,
        monkeypatch: pytest.MonkeyPatch, proves: bool) -> None:
    # Its proofs come at its end. The run moves payments as it matches lines and, only if
    # the end fails, is undone and done again moving none: so a statement that proves
    # itself (nearly all of them) is parsed once, which is what a run's speed rests on, and
    # one that does not leaves no trace of the first reading (no move, no notice).
    scans: list[int] = []
    real = scripted.scan_statement

    def counted(source: Any) -> Any:
        scans.append(1)
        return real(source)

    monkeypatch.setattr(scripted, "scan_statement", counted)
    await add_payment(hub.uow, "P-1", partner_id="ID-BPJSTK", claim_ref="CLM-1")
    await add_payment(hub.uow, "P-2")
    r = await recon.run("fake", DAY, statement([
        record(), line(1, e2e="P-1"),
        line(2, e2e="P-1", kind="returned", credit=True, reason="AC06"),
        line(3, e2e="P-2"), proof(proves, "balance")]))
    assert len(scans) == (1 if proves else 2)
    assert r.summary["counts"] == {"matched": 2, "returned": 1}
    if proves:
        assert await _states(hub) == {"P-1": "returned", "P-2": "reconciled"}
        assert [n["status"] for n in await _notices(hub)] == ["returned"]
    else:
        assert r.verdict == "incomplete"
        assert await _states(hub) == {"P-1": "paid", "P-2": "paid"}
        assert await _notices(hub) == []
        async with hub.engine.connect() as conn:
            assert (await conn.execute(select(payment_events.c.pk).where(
                payment_events.c.from_state.is_not(None)))).all() == []
            runs = (await conn.execute(select(recon_runs.c.run_id))).all()
        assert [x.run_id for x in runs] == [r.run_id]  # the first reading's run is undone


async def test_an_unproven_statement_logs_nothing_of_what_its_first_reading_undid(
        hub: Hub, recon: ReconciliationService, caplog: pytest.LogCaptureFixture) -> None:
    # The first reading moves and is rolled back: its log lines (a discrepancy opened, a
    # notice not sent) would tell ops of things that never happened. A proven run logs them.
    await add_payment(hub.uow, "P-1", partner_id="ID-BPJSTK", claim_ref="CLM-1")
    await add_payment(hub.uow, "P-2", partner_id="ID-BPJSTK", claim_ref="CLM-2")
    caplog.set_level(logging.INFO)
    returned = [record(), line(1, e2e="P-1", kind="returned", credit=True, reason="AC06")]
    r = await recon.run("fake", DAY, statement([*returned, proof(False, "balance")]))
    assert r.verdict == "incomplete"
    async with hub.engine.connect() as conn:
        assert (await conn.execute(select(payment_discrepancies.c.pk))).all() == []
    assert [m for m in caplog.messages if "P-1" in m] == []
    caplog.clear()
    await recon.run("fake", DAY, statement([*returned, proof(True, "balance")]))
    assert any("P-1: discrepancy returned_after_paid opened" in m for m in caplog.messages)


async def test_an_unproven_statement_is_read_again_even_if_its_file_is_gone(
        hub: Hub, recon: ReconciliationService, tmp_path: Path) -> None:
    # The second reading is of the bytes the run stored and began with: the file given may
    # be moved away or renamed over while the first reading runs (a drop folder's cleanup).
    await add_payment(hub.uow, "P-1")
    path = tmp_path / "statement.jsonl"
    path.write_bytes(statement([record(), line(1, e2e="P-1"), proof(False, "balance")]))

    def progress(n: int) -> None:
        if path.exists():
            path.unlink()

    r = await recon.run("fake", DAY, path, progress=progress)
    assert r.verdict == "incomplete" and r.summary["counts"] == {"matched": 1}
    assert await _states(hub) == {"P-1": "paid"}


async def test_a_statement_of_another_day_is_refused_before_it_is_stored(
        hub: Hub, recon: ReconciliationService) -> None:
    await add_payment(hub.uow, "P-1")
    with pytest.raises(InvalidMessageError) as exc:
        await recon.run("fake", DAY, statement([record(day="2026-11-30"), line(1, e2e="P-1")]))
    assert exc.value.detail == ("the statement is of 2026-11-30, not of the business date "
                                "2026-12-01 (statement S1)")
    async with hub.engine.connect() as conn:
        assert (await conn.execute(select(recon_statements))).all() == []
        assert (await conn.execute(select(recon_runs))).all() == []
    # A later statement in the file of another day: that one does not prove its day.
    r = await recon.run("fake", DAY, statement([
        record(), line(1, e2e="P-1"), record(sid="S2", day="2026-11-30"), proof(True)]))
    assert r.verdict == "incomplete"
    assert ("proof failed: S2 business_date: the statement is of 2026-11-30, not of the "
            "business date 2026-12-01") in r.summary["problems"]
    assert await _states(hub) == {"P-1": "paid"}


async def test_a_statement_of_another_day_the_rail_serves_is_run_and_moves_nothing(
        hub: Hub, recon: ReconciliationService, scripted: ScriptedRail) -> None:
    # The rail's own answer for the day: stored and run, its date a failed proof, so the day
    # has a run (the scheduler's dates move on) that says what is wrong.
    await add_payment(hub.uow, "P-1")
    scripted.served[DAY] = statement([record(day="2026-11-30"), line(1, e2e="P-1"),
                                      proof(True)])
    r = await recon.run("fake", DAY)
    assert r.verdict == "incomplete"
    assert ("proof failed: S1 business_date: the statement is of 2026-11-30, not of the "
            "business date 2026-12-01") in r.summary["problems"]
    assert await _states(hub) == {"P-1": "paid"}


@pytest.mark.parametrize("day", [date(2026, 12, 5), date(9999, 12, 31)])
async def test_a_business_date_that_has_not_begun_is_refused(
        hub: Hub, recon: ReconciliationService, day: date) -> None:
    # The run's clock is 20:00 on 4 December in Kuala Lumpur.
    with pytest.raises(InvalidMessageError) as exc:
        await recon.run("fake", day, statement([record(day=day.isoformat())]))
    assert exc.value.detail == (f"business date {day.isoformat()} has not begun in "
                                "Asia/Kuala_Lumpur (today is 2026-12-04): no statement can be "
                                "of it")
    assert (await recon.run("fake", date(2026, 12, 4), statement([record(
        day="2026-12-04")]))).verdict == "balanced"


async def test_two_runs_at_once_make_one_run(hub: Hub, recon: ReconciliationService) -> None:
    import asyncio
    await add_payment(hub.uow, "P-1")
    data = statement([record(), line(1, e2e="P-1")])
    a, b = await asyncio.gather(recon.run("fake", DAY, data), recon.run("fake", DAY, data))
    assert a.run_id == b.run_id and {a.reused, b.reused} == {True, False}
    async with hub.engine.connect() as conn:
        assert len((await conn.execute(select(recon_runs))).all()) == 1
        assert len((await conn.execute(select(recon_statements))).all()) == 1


async def test_another_rails_payment_is_not_matched(hub: Hub,
                                                    recon: ReconciliationService) -> None:
    await add_payment(hub.uow, "P-1", rail="other")
    r = await recon.run("fake", DAY, statement([record(), line(1, e2e="P-1")]))
    assert r.summary["counts"] == {"unknown_line": 1}
    assert (await _states(hub))["P-1"] == "paid"


async def test_a_payment_changed_during_the_run_fails_it_and_writes_nothing(
        hub: Hub, recon: ReconciliationService, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import update

    from gateway.errors import ConflictError
    from gateway.payments import repository as payments_repo
    from gateway.reconciliation import repository as repo
    await add_payment(hub.uow, "P-1")
    real = repo.payments_by_ids

    async def then_changed(conn, rail, ids):  # type: ignore[no-untyped-def]
        rows = await real(conn, rail, ids)
        # What a callback committing between the read and the write would leave: the state
        # and its event (without the event, the move would refuse it as changed beside the
        # hub: tests/integration/evidence/test_tampered_payments.py).
        await conn.execute(update(payments).where(payments.c.payment_id == "P-1").values(
            state="returned"))
        p1 = next(r for r in rows if r.payment_id == "P-1")
        await payments_repo.insert_events(conn, [dict(
            payment_pk=p1.pk, from_state="paid", to_state="returned",
            cause="callback", detail="rail says returned",
            at=datetime(2026, 12, 1, 9, tzinfo=UTC))])
        return rows

    monkeypatch.setattr(repo, "payments_by_ids", then_changed)
    with pytest.raises(ConflictError, match="changed while being reconciled"):
        await recon.run("fake", DAY, statement([record(), line(1, e2e="P-1")]))
    async with hub.engine.connect() as conn:
        assert (await conn.execute(select(recon_runs))).first() is None
    assert (await _states(hub))["P-1"] == "paid"  # the change above was rolled back too


async def test_the_payments_a_run_looked_up_stay_locked_until_it_ends(
        hub: Hub, recon: ReconciliationService, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a batch's lookup found (the state, and that the row is as its newest event
    recorded) must still hold when the batch is written, which does not compare again: so
    nothing else may change a looked-up payment before the run ends. Another writer waits
    for it (here: gives up at its lock timeout)."""
    from sqlalchemy import insert, text, update
    from sqlalchemy.exc import DBAPIError

    from gateway.reconciliation import repository as repo
    from gateway.storage.tables import payment_discrepancies
    await add_payment(hub.uow, "P-1")
    real = repo.payments_by_ids
    refused: list[str] = []

    async def then_another_writer(conn, rail, ids):  # type: ignore[no-untyped-def]
        rows = await real(conn, rail, ids)
        if hub.engine.dialect.name != "postgresql":  # one writer: the file's lock
            import sqlite3
            other = sqlite3.connect(str(hub.engine.url.database), timeout=0.2)
            try:
                other.execute("UPDATE payments SET rail_reference = 'BESIDE-1' "
                              "WHERE payment_id = 'P-1'")
                other.commit()
            except sqlite3.OperationalError as exc:
                refused.append(str(exc))
            finally:
                other.close()
            return rows
        async with hub.engine.connect() as pg:
            await pg.execute(text("SET lock_timeout = '200ms'"))
            try:
                await pg.execute(update(payments).where(
                    payments.c.payment_id == "P-1").values(rail_reference="BESIDE-1"))
                await pg.commit()
            except DBAPIError as exc:
                refused.append(type(exc.orig).__name__)
            await pg.rollback()  # which also undoes the SET
            # What only refers to the payment is not held up: the lock is the one an UPDATE
            # takes (FOR NO KEY UPDATE), not one that also stops a foreign key's check.
            await pg.execute(text("SET lock_timeout = '200ms'"))
            await pg.execute(insert(payment_discrepancies).values(
                payment_pk=rows[0].pk, payment_id="P-1", kind="bench", recorded_state="paid",
                rail_state="paid", overpayment=False, state="open",
                opened_at=datetime(2026, 12, 1, tzinfo=UTC)))
            await pg.rollback()
        return rows

    monkeypatch.setattr(repo, "payments_by_ids", then_another_writer)
    r = await recon.run("fake", DAY, statement([record(), line(1, e2e="P-1")]))
    assert refused, "another writer changed a payment the run had looked up"
    assert r.summary["counts"] == {"matched": 1}
    assert (await _states(hub))["P-1"] == "reconciled"


async def test_a_payment_changed_beside_the_hub_is_held_and_the_run_goes_on(
        hub: Hub, recon: ReconciliationService) -> None:
    """One payment changed beside the hub must not keep a whole statement from being
    reconciled: it is not moved (nothing is written over it), its line is a state_mismatch
    item and case naming why, and the rest of the statement is reconciled and returned."""
    from sqlalchemy import update
    await add_payment(hub.uow, "P-1")
    await add_payment(hub.uow, "P-HELD")
    await add_payment(hub.uow, "P-HELD-RET")
    await add_payment(hub.uow, "P-RET")
    async with hub.engine.begin() as conn:  # UPDATEs beside the hub, no event
        await conn.execute(update(payments).where(payments.c.payment_id.in_(
            ["P-HELD", "P-HELD-RET"])).values(account="60199990000"))
    result = await recon.run("fake", DAY, statement([
        record(), line(1, e2e="P-1"), line(2, e2e="P-HELD"), line(3, e2e="P-HELD-RET"),
        line(4, e2e="P-HELD-RET", kind="returned", credit=True, reason="AC04"),
        line(5, e2e="P-RET"), line(6, e2e="P-RET", kind="returned", credit=True,
                                   reason="AC04")]))
    assert result.verdict.value == "discrepancies"
    states = await _states(hub)
    assert states == {"P-1": "reconciled", "P-HELD": "paid", "P-HELD-RET": "paid",
                      "P-RET": "returned"}
    async with hub.engine.connect() as conn:
        items = {(r.subject, r.line_no): r for r in await conn.execute(
            select(recon_items).where(recon_items.c.run_pk == result.pk))}
        cases = {(c.subject, c.kind) for c in await conn.execute(select(recon_cases))}
    held = items[("P-HELD", 2)]
    assert held.kind == "state_mismatch"
    assert held.detail.startswith("held, not reconciled: payments pk 2 (payment P-HELD): its "
                                  "state, payout account or another changing column")
    assert items[("P-HELD-RET", 4)].kind == "state_mismatch"
    assert items[("P-HELD-RET", 4)].detail.startswith("held, not returned: ")
    assert items[("P-1", 1)].kind == "matched" and items[("P-RET", 6)].kind == "returned"
    assert ("P-HELD", "state_mismatch") in cases and ("P-HELD-RET", "state_mismatch") in cases


async def test_once_a_held_payment_is_restored_the_statement_is_done_again(
        hub: Hub, recon: ReconciliationService) -> None:
    """The held line must not stay unreconciled for ever: running the same statement again
    after the row is restored is a new run superseding the first, which moves what was held
    (and records the return); while it is still held, the same run is the answer."""
    from sqlalchemy import update
    await add_payment(hub.uow, "P-1")
    await add_payment(hub.uow, "P-HELD")
    await add_payment(hub.uow, "P-HELD-RET")
    changed = update(payments).where(payments.c.payment_id.in_(["P-HELD", "P-HELD-RET"]))
    async with hub.engine.begin() as conn:
        await conn.execute(changed.values(account="60199990000"))
    data = statement([
        record(), line(1, e2e="P-1"), line(2, e2e="P-HELD"), line(3, e2e="P-HELD-RET"),
        line(4, e2e="P-HELD-RET", kind="returned", credit=True, reason="AC04")])
    first = await recon.run("fake", DAY, data)
    assert first.verdict.value == "discrepancies"
    again = await recon.run("fake", DAY, data)  # still held: the same run
    assert again.reused and again.run_id == first.run_id
    async with hub.engine.begin() as conn:  # restored to what its newest event recorded
        await conn.execute(changed.values(account="60123456789"))
    second = await recon.run("fake", DAY, data)
    assert not second.reused and second.run_id != first.run_id
    assert second.summary["supersedes"] == first.run_id
    # Everything matched; the return is a case of its own (new beneficiary details).
    assert second.summary["counts"] == {"matched": 3, "returned": 1}
    assert await _states(hub) == {"P-1": "reconciled", "P-HELD": "reconciled",
                                  "P-HELD-RET": "returned"}
    third = await recon.run("fake", DAY, data)
    assert third.reused and third.run_id == second.run_id
    async with hub.engine.connect() as conn:
        cases = {(c.subject, c.kind): c.state for c in await conn.execute(select(recon_cases))}
    assert cases[("P-HELD", "state_mismatch")] != "open", cases


async def _cases(hub: Hub) -> list[tuple[str, str, str, str | None]]:
    async with hub.engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(  # type: ignore[misc]
            select(recon_cases.c.subject, recon_cases.c.kind, recon_cases.c.state,
                   recon_cases.c.closed_note).order_by(recon_cases.c.subject))]


@pytest.mark.parametrize("fault", ["proof", "sequence"])
async def test_an_unproven_statement_closes_no_case(
        hub: Hub, recon: ReconciliationService, fault: str) -> None:
    """A statement not taken at its word moves no payment, and for the same reason clears
    no case: a payout it shows is not thereby on a statement, nor is a discrepancy it no
    longer shows thereby gone. Its cases stay open for the statement that proves itself,
    which clears them however many unproven runs came between."""
    await recon.run("fake", date(2026, 11, 30), statement([record(sequence=6,
                                                                   day="2026-11-30")]))
    await add_payment(hub.uow, "P-OLD", paid_at=OLD)  # missing on DAY's statement
    await add_payment(hub.uow, "P-1")  # overpaid on DAY's statement
    first = await recon.run("fake", DAY, statement([record(sequence=7),
                                                   line(1, "101.00", e2e="P-1")]))
    assert await _cases(hub) == [("P-1", "amount_mismatch", "open", None),
                                 ("P-OLD", "missing_on_statement", "open", None)]

    def day(lines: list[dict[str, Any]], *, proves: bool) -> bytes:
        seq = 7 if proves or fault == "proof" else 9
        return statement([record(sequence=seq), *lines,
                          proof(proves or fault != "proof", "balance")])

    shown = [line(1, e2e="P-1"), line(2, e2e="P-OLD")]  # both as the ledger has them
    unproven = await recon.run("fake", DAY, day(shown, proves=False))
    assert unproven.verdict == "incomplete" and unproven.summary["supersedes"] == first.run_id
    assert unproven.summary["cases"]["closed"] == 0
    assert ("no case was closed on this statement's word: 2 case(s) it no longer finds "
            "stay open") in unproven.summary["problems"]
    assert await _cases(hub) == [("P-1", "amount_mismatch", "open", None),
                                 ("P-OLD", "missing_on_statement", "open", None)]
    again = await recon.run("fake", DAY, day(shown, proves=False) + b"\n")  # other bytes
    assert again.summary["supersedes"] == unproven.run_id
    assert [c[2] for c in await _cases(hub)] == ["open", "open"]

    fixed = await recon.run("fake", DAY, day(shown, proves=True))
    assert fixed.verdict == "balanced" and fixed.summary["cases"]["closed"] == 2
    assert not any("no case was closed" in p for p in fixed.summary["problems"])
    note = f"cleared by run {fixed.run_id}"
    assert await _cases(hub) == [("P-1", "amount_mismatch", "closed", note),
                                 ("P-OLD", "missing_on_statement", "closed", note)]
    assert await _states(hub) == {"P-1": "reconciled", "P-OLD": "reconciled"}


async def test_a_correction_lists_what_it_clears_since_the_statement_last_acted_on(
        hub: Hub, recon: ReconciliationService) -> None:
    """``changes`` compares a run with the statement whose word was last acted on (the newest
    run it replaces that proved itself), so the one that clears the cases lists them, and an
    unproven run between lists what it would have cleared: the count its problem names."""
    await add_payment(hub.uow, "P-OLD", paid_at=OLD)
    await add_payment(hub.uow, "P-1")
    await recon.run("fake", DAY, statement([record(), line(1, "101.00", e2e="P-1")]))
    shown = [record(), line(1, e2e="P-1"), line(2, e2e="P-OLD")]
    unproven = await recon.run("fake", DAY, statement([*shown, proof(False)]))
    again = await recon.run("fake", DAY, statement([*shown, proof(False)]) + b"\n")
    fixed = await recon.run("fake", DAY, statement([*shown, proof(True)]))
    cleared = {"count": 2, "items": ["amount_mismatch P-1", "missing_on_statement P-OLD"]}
    for run in (unproven, again, fixed):
        assert run.summary["changes"]["closed"] == cleared, run.summary["changes"]
    assert unproven.summary["cases"]["closed"] == again.summary["cases"]["closed"] == 0
    assert fixed.summary["cases"]["closed"] == 2
    assert [c[2] for c in await _cases(hub)] == ["closed", "closed"]


async def test_an_unproven_statement_does_not_reopen_what_ops_closed(
        hub: Hub, recon: ReconciliationService) -> None:
    """Ops' resolution stands against a statement not taken at its word, even one that
    shows the cause on another line; the statement that proves itself may reopen it."""
    from gateway.reconciliation import repository as repo
    await recon.run("fake", DAY, statement([record(), line(1, "5.00", ref="R-2")]))
    (case,) = await _cases(hub)
    assert case[:3] == ("line:R-2", "unknown_line", "open")
    async with hub.uow() as uow:
        pk = (await uow.conn.execute(select(recon_cases.c.pk))).scalar_one()
        assert await repo.resolve_case(uow.conn, pk, resolution="written_off", by="ops-1",
                                       note="accepted", proposal_pk=1,
                                       now=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
        await uow.commit()
    moved = [record(), line(1, "1.00", kind="fee"), line(2, "5.00", ref="R-2")]
    r = await recon.run("fake", DAY, statement([*moved, proof(False)]))
    assert r.summary["cases"]["kept_closed"] == 1
    async with hub.engine.connect() as conn:
        row = (await conn.execute(select(recon_cases))).mappings().one()
    assert (row["state"], row["resolution"], row["resolved_by"]) == (
        "closed", "written_off", "ops-1")
    await recon.run("fake", DAY, statement([*moved, proof(True)]))
    async with hub.engine.connect() as conn:
        row = (await conn.execute(select(recon_cases))).mappings().one()
    assert (row["state"], row["resolution"]) == ("open", None)  # a new line: its cause again


async def test_a_correction_of_an_earlier_date_leaves_a_later_dates_case_alone(
        hub: Hub, recon: ReconciliationService) -> None:
    """A case last found by a later business date's run is that run's: a correction of an
    earlier date that shows it too does not take it over, so the earlier date's next
    correction, no longer showing it, does not clear what the later statement still shows."""
    nxt = date(2026, 12, 2)
    await recon.run("fake", DAY, statement([record()]))
    later = await recon.run("fake", nxt, statement([
        record(sid="S2", day="2026-12-02"),
        line(1, "9.00", ref="R-9", sid="S2", day="2026-12-02")]))
    await recon.run("fake", DAY, statement([record(), line(1, "9.00", ref="R-9")]))
    await recon.run("fake", DAY, statement([record(), proof(True)]))
    async with hub.engine.connect() as conn:
        row = (await conn.execute(select(recon_cases))).mappings().one()
    assert (row["subject"], row["state"], row["last_run_pk"]) == ("line:R-9", "open",
                                                                  later.pk)
