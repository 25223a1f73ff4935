"""Malaysian business days, the reason codes' actions, and byte-deterministic reports."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from gateway.reconciliation.calendar import BusinessCalendar, calendar_for
from gateway.reconciliation.reasons import REASONS, Action, reason_for
from gateway.reconciliation.report import (
    ITEM_FIELDS,
    amount,
    csv_header,
    csv_records,
    render_table,
    summary_bytes,
)

KUL = calendar_for("KUL")


def test_weekends_and_kuala_lumpur_holidays_are_not_business_days() -> None:
    assert not KUL.is_business_day(date(2026, 8, 31))  # Hari Merdeka (a Monday)
    assert not KUL.is_business_day(date(2026, 2, 1))  # Federal Territory Day (Sunday)
    assert not KUL.is_business_day(date(2026, 2, 2))  # ... observed on the Monday
    assert not KUL.is_business_day(date(2026, 11, 28))  # Saturday
    assert KUL.is_business_day(date(2026, 12, 1))
    assert KUL.next_business_day(date(2026, 8, 28)) == date(2026, 9, 1)
    assert KUL.business_days_between(date(2026, 8, 28), date(2026, 9, 1)) == 1
    assert KUL.add_business_days(date(2026, 11, 27), 2) == date(2026, 12, 1)


def test_the_subdivision_decides_holidays_and_weekends() -> None:
    # Federal Territory Day (Monday 1 February 2027) is a Kuala Lumpur holiday, not Selangor's.
    assert not KUL.is_business_day(date(2027, 2, 1))
    assert calendar_for("SGR").is_business_day(date(2027, 2, 1))
    kelantan = BusinessCalendar("KTN")
    assert not kelantan.is_business_day(date(2026, 11, 27))  # Friday
    assert kelantan.is_business_day(date(2026, 11, 29))  # Sunday
    with pytest.raises(ValueError, match="not a Malaysian state"):
        BusinessCalendar("XX")


def test_a_payout_after_the_cutoff_settles_the_next_business_day() -> None:
    cutoff = time(17, 0)
    # 08:59 UTC is 16:59 in Kuala Lumpur; 09:00 UTC is the cut-off.
    assert KUL.settlement_day(datetime(2026, 12, 1, 8, 59, tzinfo=UTC), cutoff) == \
        date(2026, 12, 1)
    assert KUL.settlement_day(datetime(2026, 12, 1, 9, 0, tzinfo=UTC), cutoff) == \
        date(2026, 12, 2)
    assert KUL.settlement_day(datetime(2026, 11, 28, 2, 0, tzinfo=UTC), cutoff) == \
        date(2026, 11, 30)  # paid on a Saturday


def test_bad_or_closed_accounts_ask_for_new_details_and_never_retry() -> None:
    for code in ("AC01", "AC04", "AC06"):
        r = reason_for(code)
        assert r is not None and r.action == Action.new_beneficiary_details and not r.retry
    for code in ("AM04", "MS03"):
        r = reason_for(code)
        assert r is not None and r.action == Action.ops_review
    assert reason_for("MD07").action == Action.verify_death  # type: ignore[union-attr]
    unknown = reason_for("ZZ99")
    assert unknown is not None and unknown.action == Action.ops_review
    assert reason_for(None) is None and reason_for(" ac04 ") == REASONS["AC04"]


def _summary() -> dict[str, object]:
    return {"run_id": "0" * 20, "rail": "fake", "business_date": "2026-12-01",
            "verdict": "discrepancies", "problems": [],
            "by_kind": {"matched": {"MYR": {"count": 2, "ledger": "3.00", "statement": "3.00"}},
                        "unknown_line": {"MYR": {"count": 1, "ledger": "0.00",
                                                 "statement": "1.00"}}},
            "bridge": {"MYR": {"ledger": "3.00", "statement": "4.00", "explained": "0.00",
                               "residual": "-1.00"}}}


def test_reports_are_byte_deterministic() -> None:
    s = _summary()
    shuffled = dict(reversed(list(s.items())))
    assert summary_bytes(s) == summary_bytes(shuffled)
    assert summary_bytes(s).endswith(b"}\n")
    table = render_table(s)
    assert table == render_table(shuffled)
    assert "MYR: 3.00 - 4.00 = 0.00 + -1.00  <-- residual" in table
    row = {"seq": 1, "kind": "matched", "subject": "P-1", "payment_id": "P-1",
           "statement_id": "S1", "line_no": 3, "line_kind": "payout", "batch_ref": None,
           "end_to_end_id": "P-1", "rail_reference": None, "value_on": date(2026, 12, 1),
           "ledger_minor": 150, "ledger_currency": "MYR", "statement_minor": 150,
           "statement_currency": "MYR", "reason_code": None, "proposals": None,
           "detail": 'matched, "by key"'}
    record = tuple(row.get(f) for f in ITEM_FIELDS)
    assert csv_records([record]) == (
        b'1,matched,P-1,P-1,S1,3,payout,,P-1,,2026-12-01,1.50,MYR,1.50,MYR'
        b',,,"matched, ""by key"""\n')
    assert csv_header().startswith(b"seq,kind,subject,")
    assert amount(-5, "MYR") == "-0.05" and amount(7, "XAU") == "0.07"
    other = dict(row, seq=2, kind="unknown_line", payment_id=None, value_on=None,
                 ledger_currency=None, statement_minor=-123456, detail="line\nbreak")
    second = tuple(other.get(f) for f in ITEM_FIELDS)
    assert csv_records([record, second]) == csv_records([record]) + csv_records([second])
    assert csv_records([]) == b""


def test_the_table_counts_items_that_have_no_money() -> None:
    # A quarantined line has no readable amount: no currency, and still a row of its own.
    s = dict(_summary(), verdict="incomplete", problems=["2 line(s) quarantined"],
             counts={"matched": 2, "quarantined": 2, "unknown_line": 1})
    s["by_kind"] = dict(s["by_kind"], quarantined={})  # type: ignore[call-overload]
    rows = render_table(s).splitlines()
    assert rows[2].split() == ["kind", "currency", "items", "ledger", "statement"]
    assert [r.split() for r in rows[4:7]] == [
        ["matched", "MYR", "2", "3.00", "3.00"], ["quarantined", "-", "2"],
        ["unknown_line", "MYR", "1", "0.00", "1.00"]]


@pytest.mark.parametrize("minor", [0, 1, -1, 99, 100, -100, 123456789012, -10**15 - 7])
def test_amounts_are_the_decimal_ones(minor: int) -> None:
    from decimal import Decimal

    assert amount(minor, "MYR") == str(Decimal(minor).scaleb(-2).quantize(Decimal("0.01")))
