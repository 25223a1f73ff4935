"""A statement matched in many batches says exactly what it says in one.

The run's lookup of a batch is made before the previous batch's writes reach the database
(they run while the batch is classified), so what that previous batch changed comes from
memory. A payment reconciled in one batch and met again in the next (a second payout line, a
return) must be classified, moved and recorded as in a single batch; so must the payments a
batch met without moving."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from gateway.composition import Hub
from gateway.reconciliation import service
from gateway.reconciliation.service import ReconciliationService
from gateway.storage.tables import payment_events, payments, recon_items
from tests.support.recon import add_payment, line, proof, record, statement

pytestmark = pytest.mark.anyio
DAY = date(2026, 12, 1)


LINES = [
    record(),
    line(1, e2e="P-0"),
    line(2, e2e="P-1"),
    line(3, e2e="P-0"),  # in the next batch of two: a second payout line
    line(4, e2e="P-1", kind="returned", reason="AC04"),  # money back, a batch after
    line(5, "99.00", e2e="P-2"),  # met, not moved: an amount mismatch...
    line(6, e2e="P-2"),  # ...and met again in the next batch
    line(7, e2e="P-3", kind="returned"),
    line(8, e2e="P-3", kind="returned"),
    line(9, e2e="P-4"),
    line(10, "5.00"),  # no keys
    line(11, "6.00"),  # no keys
    line(12, e2e="P-4"),  # a second payout line two batches on: P-4 read back reconciled
]
STATEMENT = statement(LINES)
ITEMS = [
    (1, "matched", "P-0"), (2, "matched", "P-1"), (3, "duplicate_line", "P-0"),
    (4, "returned", "P-1"), (5, "amount_mismatch", "P-2"), (6, "duplicate_line", "P-2"),
    (7, "returned", "P-3"), (8, "duplicate_line", "P-3"), (9, "matched", "P-4"),
    (10, "unknown_line", "line:S1#10"), (11, "unknown_line", "line:S1#11"),
    (12, "duplicate_line", "P-4"), (None, "pending", "P-5")]
# Told apart by what the run met, never by where a batch ended: the earlier line was this
# statement's, whichever batch it was in.
DUPLICATES = {3: "the payout was already booked in this statement",
              6: "the payout was already booked in this statement",
              8: "a second returned line for this payment",
              12: "the payout was already booked in this statement"}


# What a run met is remembered up to _MAX_MET payments, then asked of the items written.
MET = pytest.mark.parametrize("met", [100_000, 1], ids=["met-remembered", "met-asked"])


async def _run(hub: Hub, recon: ReconciliationService, stmt: bytes) -> tuple[
        Any, list[tuple[Any, ...]], dict[int, str], dict[str, list[tuple[str, str, str]]],
        dict[str, str]]:
    """Run ``stmt`` with payments P-0..P-5: the result, its items (line, kind, subject), its
    duplicates' details, every payment's state changes and states."""
    for n in range(6):
        await add_payment(hub.uow, f"P-{n}")
    result = await recon.run("fake", DAY, stmt)
    async with hub.uow(read_only=True) as u:
        items = (await u.conn.execute(
            select(recon_items.c.line_no, recon_items.c.kind, recon_items.c.subject)
            .where(recon_items.c.run_pk == result.pk).order_by(recon_items.c.seq))).all()
        details = dict((await u.conn.execute(
            select(recon_items.c.line_no, recon_items.c.detail)
            .where(recon_items.c.run_pk == result.pk,
                   recon_items.c.kind == "duplicate_line"))).all())
        events = (await u.conn.execute(
            select(payments.c.payment_id, payment_events.c.from_state,
                   payment_events.c.to_state, payment_events.c.cause)
            .join(payments, payments.c.pk == payment_events.c.payment_pk)
            .where(payment_events.c.from_state.is_not(None))
            .order_by(payment_events.c.pk))).all()
        states = dict((await u.conn.execute(
            select(payments.c.payment_id, payments.c.state))).all())
    by_payment: dict[str, list[tuple[str, str, str]]] = {}
    for e in events:
        by_payment.setdefault(e.payment_id, []).append((e.from_state, e.to_state, e.cause))
    return result, [tuple(i) for i in items], details, by_payment, states


@MET
@pytest.mark.parametrize("batch", [2, 1000], ids=["batches-of-2", "one-batch"])
async def test_many_batches_say_what_one_batch_says(hub: Hub, recon: ReconciliationService,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    batch: int, met: int) -> None:
    monkeypatch.setattr(service, "BATCH", batch)
    monkeypatch.setattr(service, "_MAX_MET", met)
    result, items, details, by_payment, states = await _run(hub, recon, STATEMENT)
    assert items == ITEMS
    assert details == DUPLICATES
    assert by_payment == {
        "P-0": [("paid", "reconciled", "reconciled")],
        "P-1": [("paid", "reconciled", "reconciled"), ("reconciled", "returned", "statement")],
        "P-3": [("paid", "returned", "statement")],
        "P-4": [("paid", "reconciled", "reconciled")]}
    assert states == {"P-0": "reconciled", "P-1": "returned", "P-2": "paid",
                      "P-3": "returned", "P-4": "reconciled", "P-5": "paid"}
    assert result.summary["items"] == 13


@MET
@pytest.mark.parametrize("batch", [2, 1000], ids=["batches-of-2", "one-batch"])
async def test_a_statement_that_does_not_prove_itself_moves_no_payment(
        hub: Hub, recon: ReconciliationService, monkeypatch: pytest.MonkeyPatch,
        batch: int, met: int) -> None:
    # Its control total fails at its very end, after every line: what it says is still
    # classified and reported exactly as if it held, and not one payment is reconciled or
    # returned on its word.
    monkeypatch.setattr(service, "BATCH", batch)
    monkeypatch.setattr(service, "_MAX_MET", met)
    result, items, details, by_payment, states = await _run(
        hub, recon, statement([*LINES, proof(False, "control_total")]))
    assert result.verdict == "incomplete"
    assert items == ITEMS and details == DUPLICATES
    assert by_payment == {}
    assert set(states.values()) == {"paid"}
    assert ("nothing was moved on this statement's word: 3 payment(s) it matched stay paid "
            "and 2 it returned are not returned") in result.summary["problems"]


async def _payment_items(hub: Hub, recon: ReconciliationService, stmt: bytes,
                         payment_ids: int) -> list[tuple[int, str, str]]:
    """Run ``stmt`` with payments P-0.. and return its items that name a payment:
    (line, kind, detail) in order."""
    for n in range(payment_ids):
        await add_payment(hub.uow, f"P-{n}")
    result = await recon.run("fake", DAY, stmt)
    async with hub.uow(read_only=True) as u:
        return [tuple(i) for i in (await u.conn.execute(
            select(recon_items.c.line_no, recon_items.c.kind, recon_items.c.detail)
            .where(recon_items.c.run_pk == result.pk, recon_items.c.payment_pk.is_not(None))
            .order_by(recon_items.c.seq))).all()]


RETURNED_THEN_PAID_AGAIN = statement([
    record(),
    line(1, e2e="P-0"),
    line(2, e2e="P-0", kind="returned", reason="AC04"),  # back, in the same or the next batch
    line(3, e2e="P-1"),
    line(4, "1.00"), line(5, "2.00"), line(6, "3.00"),  # no keys: batches go by
    line(7, e2e="P-0"),  # a second payout line of a payment this statement paid and returned
    line(8, e2e="P-1", kind="returned"),  # returned batches after its payout...
    line(9, "4.00"), line(10, "5.00"),
    line(11, e2e="P-1"),  # ...and booked again, batches after that
])


@MET
@pytest.mark.parametrize("batch", [2, 3, 1000])
async def test_a_payout_line_after_a_return_is_a_duplicate_in_any_batching(
        hub: Hub, recon: ReconciliationService, monkeypatch: pytest.MonkeyPatch,
        batch: int, met: int) -> None:
    monkeypatch.setattr(service, "BATCH", batch)
    monkeypatch.setattr(service, "_MAX_MET", met)
    items = await _payment_items(hub, recon, RETURNED_THEN_PAID_AGAIN, 2)
    again = "the payout was already booked in this statement"
    assert items == [
        (1, "matched", "matched by key"), (2, "returned", "returned by the rail (AC04)"),
        (3, "matched", "matched by key"), (7, "duplicate_line", again),
        (8, "returned", "returned by the rail"), (11, "duplicate_line", again)]


MET_THEN_MET_AGAIN = statement([
    record(),
    line(1, "99.00", e2e="P-0"),  # met, not moved
    line(2, "1.00"), line(3, "1.50"),  # (the first batch is the first item and three more)
    line(4, "99.00", e2e="P-1"),  # the next batch of three: past a _MAX_MET of 1...
    line(5, e2e="P-0"),  # ...and, in the same batch, P-0 again: still a duplicate
    line(6, "2.00"),
])


@MET
@pytest.mark.parametrize("batch", [3, 1000])
async def test_what_a_run_met_is_kept_to_the_end_of_the_batch_that_outgrows_it(
        hub: Hub, recon: ReconciliationService, monkeypatch: pytest.MonkeyPatch,
        batch: int, met: int) -> None:
    monkeypatch.setattr(service, "BATCH", batch)
    monkeypatch.setattr(service, "_MAX_MET", met)
    items = await _payment_items(hub, recon, MET_THEN_MET_AGAIN, 2)
    assert [(n, kind) for n, kind, _ in items] == [
        (1, "amount_mismatch"), (4, "amount_mismatch"), (5, "duplicate_line")]
    async with hub.uow(read_only=True) as u:
        states = dict((await u.conn.execute(
            select(payments.c.payment_id, payments.c.state))).all())
    assert states == {"P-0": "paid", "P-1": "paid"}


AFTER_MOVES = [
    record(),
    line(1, e2e="P-0"),  # reconciled...
    line(2, e2e="P-1", kind="returned", reason="AC04"),  # returned...
    line(3, "1.00"), line(4, "2.00"), line(5, "3.00"), line(6, "4.00"),  # (batches go by)
    line(7, e2e="P-0", kind="not_paid"),  # ...and said not paid, batches later
    line(8, e2e="P-1", kind="not_paid"),
    line(9, e2e="P-2", kind="returned"),  # returned, then its payout line batches later
    line(10, "5.00"), line(11, "6.00"), line(12, "7.00"), line(13, "8.00"),
    line(14, e2e="P-2"),
]
# As a proven statement read in one batch classifies them: each line reads the payment as the
# lines before it left it, in any batching, moved or not.
AFTER_MOVES_ITEMS = [
    (1, "matched", 10000, 10000, "matched by key"),
    (2, "returned", -10000, 10000, "returned by the rail (AC04)"),
    (7, "state_mismatch", 10000, 0, "the rail says no money moved; the ledger says reconciled"),
    (8, "state_mismatch", 0, 0, "the rail says not paid; the ledger says returned"),
    (9, "returned", -10000, 10000, "returned by the rail"),
    (14, "matched", 10000, 10000, "matched by key"),  # the payout the return took back
]


@pytest.mark.parametrize("proven", [True, False], ids=["proven", "unproven"])
@pytest.mark.parametrize("batch", [2, 3, 1000])
async def test_a_line_reads_the_payment_as_the_lines_before_left_it(
        hub: Hub, recon: ReconciliationService, monkeypatch: pytest.MonkeyPatch,
        batch: int, proven: bool) -> None:
    monkeypatch.setattr(service, "BATCH", batch)
    stmt = statement([*AFTER_MOVES, proof(proven, "control_total")])
    for n in range(3):
        await add_payment(hub.uow, f"P-{n}")
    result = await recon.run("fake", DAY, stmt)
    async with hub.uow(read_only=True) as u:
        items = [tuple(i) for i in (await u.conn.execute(
            select(recon_items.c.line_no, recon_items.c.kind, recon_items.c.ledger_minor,
                   recon_items.c.statement_minor, recon_items.c.detail)
            .where(recon_items.c.run_pk == result.pk, recon_items.c.payment_pk.is_not(None))
            .order_by(recon_items.c.seq))).all()]
        states = dict((await u.conn.execute(
            select(payments.c.payment_id, payments.c.state))).all())
    assert items == AFTER_MOVES_ITEMS
    assert result.summary["bridge"]["MYR"] == {
        "ledger": "100.00", "statement": "436.00", "explained": "-400.00", "residual": "64.00"}
    if proven:
        assert states == {"P-0": "reconciled", "P-1": "returned", "P-2": "returned"}
    else:
        assert set(states.values()) == {"paid"}
        assert ("nothing was moved on this statement's word: 1 payment(s) it matched stay paid "
                "and 2 it returned are not returned") in result.summary["problems"]
