"""The settlement CSV parser: strict, with errors naming line and field."""

from __future__ import annotations

from datetime import date

import pytest

from adapters.rails.merchantrade.settlement import COLUMNS, parse_settlement
from gateway.errors import InvalidMessageError
from gateway.money import Money

HEADER = ",".join(COLUMNS)


def test_parses_rows() -> None:
    data = (
        "\ufeff" + HEADER + "\r\n"
        "2025-01-31,px-pay-1,MT01,1250.00,MYR,PAID,0.50\r\n"
        '2025-01-31,px-pay-2,MT02,"3.10",MYR,RETURNED,0.50\r\n'
        "\r\n"
    ).encode()
    first, second = parse_settlement(data)
    assert first.amount == Money(125000, "MYR") and first.booked_on == date(2025, 1, 31)
    assert first.end_to_end_id == "px-pay-1" and first.rail_reference == "MT01"
    assert first.status == "PAID" and not first.reversal and first.extra["fee"] == "0.50"
    assert second.reversal and second.line_no == 3


@pytest.mark.parametrize(
    ("row", "line", "field"),
    [
        ("2025-02-30,k,r,1.00,MYR,PAID,0.50", 2, "settlement_date"),
        ("2025-01-31,,r,1.00,MYR,PAID,0.50", 2, "payout_reference"),
        ("2025-01-31,k,r,1.0,MYR,PAID,0.50", 2, "amount"),
        ("2025-01-31,k,r,-1.00,MYR,PAID,0.50", 2, "amount"),
        ("2025-01-31,k,r,1.00,EUR,PAID,0.50", 2, "currency"),
        ("2025-01-31,k,r,1.00,MYR,DONE,0.50", 2, "status"),
        ("2025-01-31,k,r,1.00,MYR,PAID,0.5", 2, "fee"),
        ("2025-01-31,k,r,1.00,MYR,PAID", 2, "row"),
    ],
)
def test_errors_name_line_and_field(row: str, line: int, field: str) -> None:
    with pytest.raises(InvalidMessageError) as err:
        parse_settlement(f"{HEADER}\n{row}\n".encode())
    assert err.value.code == "schema_violation"
    assert err.value.extra == {"line": line, "field": field}
    assert f"line {line}" in err.value.detail


def test_header_required() -> None:
    with pytest.raises(InvalidMessageError) as err:
        parse_settlement(b"2025-01-31,k,r,1.00,MYR,PAID,0.50\n")
    assert err.value.extra["field"] == "header"
    with pytest.raises(InvalidMessageError):
        parse_settlement(b"")
    with pytest.raises(InvalidMessageError):
        parse_settlement(b"\xff\xfe")
