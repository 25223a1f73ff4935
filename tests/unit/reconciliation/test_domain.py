"""The matcher, classifier, bridge and verdict (plain Python), including properties."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.money import Money
from gateway.ports.rail import LineKind, StatementLine
from gateway.reconciliation import domain
from gateway.reconciliation.calendar import calendar_for
from gateway.reconciliation.domain import (
    BRIDGE_EXPLAINED,
    ItemKind,
    LedgerPayment,
    Tally,
    Verdict,
    classify_expected,
    classify_line,
    propose,
    sequence_gaps,
    verdict,
)

DAY = date(2026, 12, 1)
CAL = calendar_for("KUL")
K = ItemKind


def pay(pid: str, minor: int = 10000, state: str = "paid", cur: str = "MYR",
        settles: date = DAY, **kw: object) -> LedgerPayment:
    return LedgerPayment(1, pid, state, minor, cur, settles_on=settles, **kw)  # type: ignore[arg-type]


def ln(n: int, minor: int = 10000, cur: str = "MYR", *, e2e: str | None = None,
       kind: LineKind = LineKind.payout, credit: bool = False, reason: str | None = None,
       ref: str | None = None) -> StatementLine:
    return StatementLine("S1", n, Money(minor, cur), credit=credit, booked_on=DAY, value_on=DAY,
                         end_to_end_id=e2e, kind=kind, return_reason=reason, rail_reference=ref)


def test_an_exact_match_reconciles_a_paid_payment() -> None:
    item = classify_line(ln(1, e2e="P"), pay("P"), seen=False)
    assert item.kind == K.matched and item.to_state == "reconciled"
    assert (item.ledger_minor, item.statement_minor) == (10000, 10000)


def test_a_held_payment_is_never_moved_by_a_line() -> None:
    """Changed beside the hub: a line that would move it is a state_mismatch naming why, with
    the amounts it had; a line that would not move it is classified as ever."""
    why = "payments pk 1 (payment P): ... changed without an event"
    item = classify_line(ln(1, e2e="P"), pay("P"), seen=False, held=why)
    assert (item.kind, item.to_state) == (K.state_mismatch, None)
    assert item.detail == f"held, not reconciled: {why}"
    assert (item.ledger_minor, item.statement_minor) == (10000, 10000)
    back = classify_line(ln(2, e2e="P", kind=LineKind.returned, credit=True, reason="AC04"),
                         pay("P"), seen=False, held=why)
    assert (back.kind, back.to_state) == (K.state_mismatch, None)
    assert back.detail.startswith("held, not returned: ")
    assert classify_line(ln(1, 10001, e2e="P"), pay("P"), seen=False, held=why).kind == \
        K.amount_mismatch


def test_amounts_are_exact_minor_units_without_tolerance() -> None:
    assert classify_line(ln(1, 10001, e2e="P"), pay("P"), seen=False).kind == K.amount_mismatch
    assert classify_line(ln(1, cur="IDR", e2e="P"), pay("P"), seen=False).kind == \
        K.currency_mismatch


def test_duplicates_states_and_returns() -> None:
    assert classify_line(ln(2, e2e="P"), pay("P"), seen=True).kind == K.duplicate_line
    # Reconciled by an earlier, still current run: a second booking of the payout.
    assert classify_line(ln(2, e2e="P"), pay("P", state="reconciled"), seen=False).kind == \
        K.duplicate_line
    # Reconciled by the run being superseded: the same booking, seen again.
    again = classify_line(ln(2, e2e="P"), pay("P", state="reconciled", by_superseded=True),
                          seen=False)
    assert again.kind == K.matched and again.to_state is None
    for state in ("failed", "cancelled", "instructed", "submitted"):
        assert classify_line(ln(1, e2e="P"), pay("P", state=state), seen=False).kind == \
            K.state_mismatch
    not_paid = ln(1, e2e="P", kind=LineKind.not_paid)
    assert classify_line(not_paid, pay("P"), seen=False).kind == K.state_mismatch
    assert classify_line(not_paid, pay("P", state="failed"), seen=False).kind == K.matched
    ret = classify_line(ln(3, e2e="P", kind=LineKind.returned, credit=True, reason="AC04"),
                        pay("P", state="reconciled"), seen=False)
    assert ret.kind == K.returned and ret.to_state == "returned" and ret.reason_code == "AC04"
    assert ret.statement_minor == -10000 and ret.ledger_minor == -10000
    rev = classify_line(ln(3, e2e="P", kind=LineKind.reversal, credit=True), pay("P"),
                        seen=False)
    assert rev.kind == K.reversed and rev.to_state == "returned"


def test_lines_without_a_payment() -> None:
    assert classify_line(ln(1), None, seen=False).kind == K.unknown_line
    assert classify_line(ln(1, kind=LineKind.fee), None, seen=False).kind == K.fee
    assert classify_line(ln(1, kind=LineKind.fx, credit=True), None, seen=False).kind == K.fx
    assert classify_line(ln(1, kind=LineKind.other), None, seen=False).kind == K.unknown_line


def test_pending_within_the_window_and_missing_past_it() -> None:
    # 2026-11-27 is a Friday: T+1 is Monday 30 Nov, T+2 Tuesday 1 Dec.
    friday = date(2026, 11, 27)
    assert classify_expected(pay("P", settles=friday), date(2026, 11, 30), 1, CAL).kind == \
        K.pending
    assert classify_expected(pay("P", settles=friday), DAY, 1, CAL).kind == \
        K.missing_on_statement
    assert classify_expected(pay("P", settles=friday), DAY, 2, CAL).kind == K.pending


def test_a_keyless_line_is_only_proposed_and_ambiguity_lists_all() -> None:
    cands = [pay("A"), pay("B", minor=5), pay("C", settles=DAY - timedelta(days=30))]
    assert propose(ln(1), cands, window_days=5) == ("A",)
    assert propose(ln(1), [pay("A"), pay("Z")], window_days=5) == ("A", "Z")
    assert propose(ln(1, ref="R1"), [pay("A", rail_reference="R2")], window_days=5) == ()


def test_verdicts() -> None:
    t = Tally()
    t.add(classify_line(ln(1, e2e="P"), pay("P"), seen=False))
    assert verdict(t, failed_proofs=0, sequence_gaps=0, statement_missing=False) == \
        Verdict.balanced
    assert verdict(t, failed_proofs=1, sequence_gaps=0, statement_missing=False) == \
        Verdict.incomplete
    assert verdict(t, failed_proofs=0, sequence_gaps=1, statement_missing=False) == \
        Verdict.incomplete
    assert verdict(t, failed_proofs=0, sequence_gaps=0, statement_missing=True) == \
        Verdict.incomplete
    t.add(classify_line(ln(2), None, seen=False))
    assert verdict(t, failed_proofs=0, sequence_gaps=0, statement_missing=False) == \
        Verdict.discrepancies
    t.add(domain.Item(K.quarantined, line_ref="S1#3"))
    assert verdict(t, failed_proofs=0, sequence_gaps=0, statement_missing=False) == \
        Verdict.incomplete


def test_sequence_gaps() -> None:
    assert sequence_gaps({"A": 4}, [("A", 5), ("A", 6), ("B", 1)]) == []
    assert sequence_gaps({"A": 4}, [("A", 6)]) == ["account A: sequence 6 does not follow 4"]
    assert sequence_gaps({}, [("A", 9), ("A", 9)]) == [
        "account A: sequence 9 does not follow 9"]


def test_case_terms_follow_kind_and_reason() -> None:
    ret = classify_line(ln(3, e2e="P", kind=LineKind.returned, credit=True, reason="AC06"),
                        pay("P"), seen=False)
    terms = domain.case_terms(ret, DAY, CAL)
    assert terms.action == "new_beneficiary_details" and not terms.retry
    assert terms.due_on == date(2026, 12, 4)  # 3 business days
    dead = classify_line(ln(3, e2e="P", kind=LineKind.returned, credit=True, reason="MD07"),
                         pay("P"), seen=False)
    assert domain.case_terms(dead, DAY, CAL).priority == "high"


# -- properties ------------------------------------------------------------------------------

_IDS = [f"P{i}" for i in range(8)]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[LedgerPayment], list[StatementLine]]:
    payments = [pay(pid, minor=draw(st.sampled_from([100, 200, 300])),
                    state=draw(st.sampled_from(["paid", "paid", "failed", "reconciled"])))
                for pid in draw(st.lists(st.sampled_from(_IDS), unique=True, max_size=8))]
    lines = []
    for n in range(draw(st.integers(0, 12))):
        lines.append(ln(n, draw(st.sampled_from([100, 200, 300])),
                        e2e=draw(st.one_of(st.none(), st.sampled_from(_IDS))),
                        kind=draw(st.sampled_from([LineKind.payout, LineKind.payout,
                                                   LineKind.returned, LineKind.fee])),
                        credit=draw(st.booleans())))
    return payments, lines


def _run(payments: list[LedgerPayment],
         lines: list[StatementLine]) -> tuple[list[domain.Item], Tally]:
    """What the service does with these, without a database."""
    by_id = {p.payment_id: p for p in payments}
    seen: set[tuple[str, bool]] = set()
    items = []
    for line in lines:
        p = by_id.get(line.end_to_end_id or "")
        back = line.kind == LineKind.returned
        item = classify_line(line, p, seen=p is not None and (p.payment_id, back) in seen)
        if p is not None and item.payment is not None:
            seen.add((p.payment_id, back))
        items.append(item)
    on_lines = {i.payment.payment_id for i in items if i.payment is not None}
    for p in payments:
        if p.state == "paid" and p.payment_id not in on_lines:
            items.append(classify_expected(p, DAY, 1, CAL))
    t = Tally()
    for i in items:
        t.add(i)
    return items, t


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_every_line_gets_one_item_and_matches_at_most_one_payment(
        case: tuple[list[LedgerPayment], list[StatementLine]]) -> None:
    payments, lines = case
    items, _ = _run(payments, lines)
    line_items = [i for i in items if i.line is not None]
    assert [i.line for i in line_items] == lines  # one item per line, in order
    # Every paid payment gets exactly one item when on no line, and none otherwise.
    expected = [i for i in items if i.line is None]
    assert len({i.payment.payment_id for i in expected if i.payment}) == len(expected)
    # A payment is matched by at most one outgoing line.
    matched = [i.payment.payment_id for i in items if i.kind == K.matched and i.payment
               and i.line is not None and i.line.kind == LineKind.payout]
    assert len(matched) == len(set(matched))
    # Only a paid payment is moved to reconciled.
    for i in items:
        if i.to_state == "reconciled":
            assert i.payment is not None and i.payment.state == "paid"


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_the_bridge_adds_up_and_is_zero_when_everything_is_explained(
        case: tuple[list[LedgerPayment], list[StatementLine]]) -> None:
    payments, lines = case
    items, tally = _run(payments, lines)
    for cur, b in tally.bridge.items():
        ledger = sum(i.ledger_minor for i in items if i.ledger_currency == cur)
        stmt = sum(i.statement_minor for i in items if i.statement_currency == cur)
        assert (b.ledger, b.statement) == (ledger, stmt)
        unexplained = sum((i.ledger_minor if i.ledger_currency == cur else 0)
                          - (i.statement_minor if i.statement_currency == cur else 0)
                          for i in items if i.kind not in BRIDGE_EXPLAINED)
        assert b.residual == unexplained
    if all(i.kind in BRIDGE_EXPLAINED for i in items):
        assert all(b.residual == 0 for b in tally.bridge.values())


_CURRENCIES = st.sampled_from([None, "MYR", "IDR"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.builds(domain.Item, kind=st.sampled_from(list(K)),
                          ledger_minor=st.integers(-10**6, 10**6), ledger_currency=_CURRENCIES,
                          statement_minor=st.integers(-10**6, 10**6),
                          statement_currency=_CURRENCIES,
                          # A tally reads kinds and money only (builds would make the rest).
                          payment=st.none(), line=st.none(), reason_code=st.none(),
                          detail=st.just(""), to_state=st.none(), proposals=st.just(()),
                          line_ref=st.none()), max_size=40))
def test_a_batch_tallied_at_once_is_tallied_as_item_by_item(items: list[domain.Item]) -> None:
    one, batch = Tally(), Tally()
    for i in items:
        one.add(i)
    batch.add_all(items[:len(items) // 2])
    batch.add_all(items[len(items) // 2:])
    assert (batch.counts, batch.totals, batch.bridge) == (one.counts, one.totals, one.bridge)


@pytest.mark.parametrize(("resolution", "resolved_on", "found_on", "reopened"), [
    (None, "S1#1", "S1#1", True),  # closed by a run: found again, open again
    ("explained", "S1#1", "S1#1", False),  # the same line ops already explained
    ("written_off", "S1#1", "S2#4", True),  # booked again on another line
    ("written_off", None, None, False),  # a ledger-side case: ops' word stands
    ("reask", None, None, True),  # ops left it to the rail's answer, and it is still there
])
def test_an_ops_closed_case_reopens_only_when_its_cause_is_found_again(
        resolution: str | None, resolved_on: str | None, found_on: str | None,
        reopened: bool) -> None:
    assert domain.reopens(resolution, resolved_on, found_on) is reopened


def test_a_lookup_row_is_read_into_matched_by_its_columns_names() -> None:
    # Matched is made from the lookup's columns by position: its fields are their names.
    from gateway.reconciliation import repository as repo

    assert repo.Matched._fields == (*(c.name for c in repo._LINE_MATCH), "unchanged")
