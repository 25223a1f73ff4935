"""The settlement CSV (v2): strict rows naming line and field, bad rows quarantined while the
rest is read, the HEADER record and the TRAILER's proofs both ways, kinds and fee lines."""

from __future__ import annotations

import io
from datetime import date

import pytest

from adapters.rails.merchantrade.settlement import (
    COLUMNS,
    REASON_CODES,
    parse_settlement,
    scan_settlement,
)
from gateway.errors import InvalidMessageError
from gateway.money import Money
from gateway.ports.rail import BadLine, LineKind, StatementLine, StatementProof, StatementRecord

HEAD = "HEADER,2025-01-31,MTW-PERKESO-01,9163\r\n" + ",".join(COLUMNS) + "\r\n"
ROW = "2025-01-31,k,r,1.00,MYR,PAID,0.50,"


def _file(*rows: str, trailer: str | None = "auto") -> bytes:
    body = HEAD + "".join(r + "\r\n" for r in rows)
    if trailer == "auto":
        trailer = f"TRAILER,{len(rows)},MYR,{len(rows)}.00,{len(rows) * 0.5:.2f}"
    if trailer is not None:
        body += trailer + "\r\n"
    return body.encode()


def _scan(data: bytes) -> list[object]:
    return list(scan_settlement(io.BytesIO(data)))


def _proofs(items: list[object]) -> dict[str, StatementProof]:
    return {p.check: p for p in items if isinstance(p, StatementProof)}


def test_parses_rows_kinds_and_fee_lines() -> None:
    data = (
        "\ufeff" + HEAD
        + "2025-01-31,px-pay-1,MT01,1250.00,MYR,PAID,0.50,\r\n"
        + '2025-01-31,px-pay-2,MT02,"3.10",MYR,RETURNED,0.00,account_closed\r\n'
        + "2025-01-31,px-pay-3,MT03,2.00,MYR,FAILED,0.00,account_blocked\r\n"
        + "2025-01-31,px-pay-4,MT04,4.00,IDR,REVERSED,0.00,\r\n"
        + "\r\n"
        + "TRAILER,4,IDR,4.00,0.00,MYR,1255.10,0.50\r\n"
    ).encode()
    items = _scan(data)
    record = items[0]
    assert isinstance(record, StatementRecord)
    assert (record.statement_id, record.kind, record.account, record.business_date,
            record.sequence) == ("merchantrade:2025-01-31", "settlement_csv", "MTW-PERKESO-01",
                                 date(2025, 1, 31), 9163)
    lines = [i for i in items if isinstance(i, StatementLine)]
    assert [(x.line_no, x.kind, x.end_to_end_id) for x in lines] == [
        (3, LineKind.payout, "px-pay-1"),
        (-3, LineKind.fee, "px-pay-1"),  # the fee of line 3, its own line
        (4, LineKind.returned, "px-pay-2"),
        (5, LineKind.not_paid, "px-pay-3"),
        (6, LineKind.reversal, "px-pay-4"),
    ]
    paid, fee, returned, failed, reversed_ = lines
    assert paid.amount == Money(125000, "MYR") and not paid.credit and fee.amount.minor == 50
    assert returned.return_reason == "AC04" and returned.credit and not returned.reversal
    assert failed.return_reason == "AC06" and reversed_.reversal and reversed_.credit
    assert all(p.ok for p in _proofs(items).values()), _proofs(items)
    assert parse_settlement(data) == lines


@pytest.mark.parametrize(("word", "code"), sorted(REASON_CODES.items()))
def test_every_merchantrade_reason_maps_to_an_iso_code(word: str, code: str) -> None:
    [line] = parse_settlement(_file(f"2025-01-31,k,r,1.00,MYR,RETURNED,0.00,{word}",
                                    trailer="TRAILER,1,MYR,1.00,0.00"))
    assert line.return_reason == code and len(code) == 4


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("2025-02-30,k,r,1.00,MYR,PAID,0.50,", "settlement_date"),
        ("2025-01-31,,r,1.00,MYR,PAID,0.50,", "payout_reference"),
        ("2025-01-31,k,r,1.0,MYR,PAID,0.50,", "amount"),
        ("2025-01-31,k,r,-1.00,MYR,PAID,0.50,", "amount"),
        ("2025-01-31,k,r,1.00,EUR,PAID,0.50,", "currency"),
        ("2025-01-31,k,r,1.00,MYR,DONE,0.50,", "status"),
        ("2025-01-31,k,r,1.00,MYR,PAID,0.5,", "fee"),
        ("2025-01-31,k,r,1.00,MYR,RETURNED,0.00,", "reason"),
        ("2025-01-31,k,r,1.00,MYR,RETURNED,0.00,gone_fishing", "reason"),
        ("2025-01-31,k,r,1.00,MYR,PAID", "row"),
    ],
)
def test_bad_row_is_quarantined_and_reading_goes_on(row: str, field: str) -> None:
    data = _file(ROW, row, ROW)
    items = _scan(data)
    [bad] = [i for i in items if isinstance(i, BadLine)]
    assert bad.line_no == 4 and f"field {field}" in bad.reason and bad.text == row
    assert [x.line_no for x in items if isinstance(x, StatementLine) and x.line_no > 0] == [3, 5]
    assert _proofs(items)["record_count"].ok  # a bad row is still a row of the file
    with pytest.raises(InvalidMessageError) as err:
        parse_settlement(data)
    assert err.value.code == "schema_violation"
    assert err.value.extra == {"line": 4, "field": field}
    assert "line 4" in err.value.detail


def test_control_total_holds_and_fails() -> None:
    good = _scan(_file(ROW, ROW))
    assert _proofs(good)["control_total"].ok
    assert "MYR: rows add up to 2.00 (fees 1.00)" in _proofs(good)["control_total"].detail
    bad = _scan(_file(ROW, ROW, trailer="TRAILER,2,MYR,2.01,1.00"))
    proof = _proofs(bad)["control_total"]
    assert not proof.ok and "does not add up" in proof.detail
    fees = _proofs(_scan(_file(ROW, trailer="TRAILER,1,MYR,1.00,0.00")))["control_total"]
    assert not fees.ok
    other = _proofs(_scan(_file(ROW, trailer="TRAILER,1,IDR,1.00,0.50")))
    assert not other["control_total"].ok  # MYR rows, no MYR total
    unreadable = _scan(_file(ROW, "2025-01-31,k,r,x,MYR,PAID,0.50,",
                             trailer="TRAILER,2,MYR,1.00,0.50"))
    assert "cannot be proved" in _proofs(unreadable)["control_total"].detail


def test_record_count_holds_and_fails() -> None:
    assert _proofs(_scan(_file(ROW)))["record_count"].ok
    wrong = _proofs(_scan(_file(ROW, ROW, trailer="TRAILER,3,MYR,2.00,1.00")))
    assert not wrong["record_count"].ok and "3" in wrong["record_count"].detail
    empty = _scan(_file(trailer="TRAILER,0"))
    assert all(p.ok for p in _proofs(empty).values()) and len(empty) == 4


def test_missing_trailer_is_a_failed_proof_not_an_exception() -> None:
    items = _scan(_file(ROW, trailer=None))
    proofs = _proofs(items)
    assert not proofs["record_count"].ok and not proofs["control_total"].ok
    assert not proofs["structure"].ok and "cut off" in proofs["structure"].detail
    assert "no TRAILER" in proofs["record_count"].detail
    with pytest.raises(InvalidMessageError):
        parse_settlement(_file(ROW, trailer=None))


def test_a_row_after_the_trailer_is_a_bad_line() -> None:
    items = _scan(_file(ROW) + (ROW + "\r\n").encode())
    [bad] = [i for i in items if isinstance(i, BadLine)]
    assert bad.line_no == 5 and "after the TRAILER" in bad.reason


def test_header_and_columns_required() -> None:
    for data, field in [
        (b"", "header"),
        ((",".join(COLUMNS) + "\n" + ROW + "\n").encode(), "header"),
        (b"HEADER,2025-01-31,W,1\nsettlement_date,payout_reference\n", "columns"),
    ]:
        with pytest.raises(InvalidMessageError) as err:
            _scan(data)
        assert err.value.extra["field"] == field
    with pytest.raises(InvalidMessageError):
        _scan(b"\xff\xfe")


def test_a_row_that_is_not_utf8_is_a_bad_line() -> None:
    data = _file(ROW, ROW).replace(b"r,1.00", b"r\xff,1.00", 1)
    items = _scan(data)
    [bad] = [i for i in items if isinstance(i, BadLine)]
    assert bad.line_no == 3 and "not UTF-8" in bad.reason and "\ufffd" in bad.text
    assert [x.line_no for x in items if isinstance(x, StatementLine)] == [4, -4]
    assert "cannot be proved" in _proofs(items)["control_total"].detail


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f"])
def test_a_row_with_a_control_character_is_a_bad_line(char: str) -> None:
    # No field of the file may hold one (a NUL cannot even be stored by PostgreSQL): the row
    # is quarantined, never a payment's reference; its money still counts where readable.
    data = _file(ROW, ROW).replace(b",k,", f",k{char},".encode(), 1)
    items = _scan(data)
    [bad] = [i for i in items if isinstance(i, BadLine)]
    assert bad.line_no == 3 and f"a control character (U+{ord(char):04X})" in bad.reason
    assert char not in bad.text
    assert [x.line_no for x in items if isinstance(x, StatementLine)] == [4, -4]
    assert _proofs(items)["control_total"].ok and _proofs(items)["record_count"].ok


def test_the_callers_stream_stays_open() -> None:
    source = io.BytesIO(_file(ROW))
    assert _scan(source.getvalue()) and list(scan_settlement(source))
    assert not source.closed


@pytest.mark.parametrize("count", ["9" * 5000, "\u00b9", "1" * 19])
def test_a_trailer_count_that_is_no_number_fails_its_proof(count: str) -> None:
    proofs = _proofs(_scan(_file(ROW, trailer=f"TRAILER,{count},MYR,1.00,0.50")))
    assert not proofs["record_count"].ok
    assert "is not a number of rows" in proofs["record_count"].detail
    assert len(proofs["record_count"].detail) < 200


@pytest.mark.parametrize("sequence", ["9" * 5000, "\u00b2", "1" * 19, "x7"])
def test_a_header_sequence_that_is_no_number_fails_a_proof(sequence: str) -> None:
    data = (f"HEADER,2025-01-31,MTW-PERKESO-01,{sequence}\r\n" + ",".join(COLUMNS) + "\r\n"
            + ROW + "\r\nTRAILER,1,MYR,1.00,0.50\r\n").encode()
    items = _scan(data)
    record = items[0]
    assert isinstance(record, StatementRecord) and record.sequence is None
    proofs = _proofs(items)
    assert not proofs["sequence"].ok and "HEADER sequence" in proofs["sequence"].detail
    assert proofs["record_count"].ok and proofs["control_total"].ok


def test_a_line_longer_than_any_row_is_read_past_not_kept() -> None:
    # One endless line (no line break for megabytes) must not be held whole: it is read past
    # in pieces, quarantined, and the rows after it are read with their own line numbers.
    data = _file(ROW, ROW).replace(b"\r\n" + ROW.encode(), b"\r\n" + b"x" * 3_000_000
                                   + b"\r\n" + ROW.encode(), 1)
    items = _scan(data)
    [bad] = [i for i in items if isinstance(i, BadLine)]
    assert bad.line_no == 3 and "longer than 65536 characters" in bad.reason
    assert len(bad.text) <= 500
    assert [x.line_no for x in items if isinstance(x, StatementLine)] == [4, -4, 5, -5]
    assert not _proofs(items)["record_count"].ok  # the TRAILER counts 2 rows; there are 3
