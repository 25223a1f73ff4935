"""The Merchantrade daily settlement CSV (our assumed format) and its strict parser.

UTF-8 (a BOM is tolerated), comma-separated, RFC 4180 quoting, one header row with exactly
these columns in this order::

    settlement_date,payout_reference,rail_reference,amount,currency,status,fee

- ``settlement_date``: ``YYYY-MM-DD``, the day the payout reached its final state.
- ``payout_reference``: our idempotency key (the end-to-end id), unique per payout.
- ``rail_reference``: the rail's own payout id.
- ``amount``/``fee``: decimal strings with exactly the currency's minor digits (``12.34``).
- ``currency``: ISO 4217, one of the gateway's currencies.
- ``status``: ``PAID`` | ``RETURNED`` (paid, then the money came back) | ``FAILED`` (never paid).

Each data row becomes a ``StatementLine`` whose ``line_no`` is its physical line number in the
file (the header is line 1) so an error message points at the line an operator can open.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date

from gateway.errors import InvalidMessageError
from gateway.money import Money
from gateway.ports.rail import StatementLine

__all__ = ["COLUMNS", "STATUSES", "SettlementRow", "parse_settlement", "render_settlement"]

COLUMNS = (
    "settlement_date",
    "payout_reference",
    "rail_reference",
    "amount",
    "currency",
    "status",
    "fee",
)
STATUSES = frozenset({"PAID", "RETURNED", "FAILED"})

SettlementRow = tuple[str, str, str, str, str, str, str]


def _bad(line: int, field: str, why: str) -> InvalidMessageError:
    return InvalidMessageError(
        "schema_violation", f"settlement line {line}, field {field}: {why}", line=line, field=field
    )


def parse_settlement(data: bytes) -> list[StatementLine]:
    """Parse a settlement CSV into statement lines, refusing anything not exactly as specified.

    Raises:
        InvalidMessageError: schema_violation naming the line and field.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidMessageError(
            "schema_violation", f"settlement is not UTF-8 (byte {exc.start})"
        ) from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise _bad(1, "header", "file is empty; a header row is required")
        if tuple(h.strip() for h in header) != COLUMNS:
            raise _bad(1, "header", f"expected {','.join(COLUMNS)}, got {','.join(header)}")
        lines: list[StatementLine] = []
        for row in reader:
            line = reader.line_num
            if not row or row == [""]:
                continue  # a trailing blank line is not a record
            lines.append(_row(line, row))
    except csv.Error as exc:
        raise _bad(reader.line_num, "row", f"CSV syntax: {exc}") from exc
    return lines


def _row(line: int, row: list[str]) -> StatementLine:
    if len(row) != len(COLUMNS):
        raise _bad(line, "row", f"expected {len(COLUMNS)} fields, got {len(row)}")
    values = dict(zip(COLUMNS, (v.strip() for v in row), strict=True))
    try:
        day = date.fromisoformat(values["settlement_date"])
    except ValueError:
        raise _bad(line, "settlement_date", "must be YYYY-MM-DD") from None
    if len(values["settlement_date"]) != 10:
        raise _bad(line, "settlement_date", "must be YYYY-MM-DD")
    for name in ("payout_reference", "rail_reference"):
        if not values[name] or len(values[name]) > 128:
            raise _bad(line, name, "must be 1..128 characters")
    currency = values["currency"]
    try:
        amount = Money.parse(values["amount"], currency)
    except ValueError as exc:
        field = "amount" if "amount" in str(exc) else "currency"
        raise _bad(line, field, str(exc)) from None
    try:
        fee = Money.parse(values["fee"], currency)
    except ValueError as exc:
        raise _bad(line, "fee", str(exc)) from None
    status = values["status"]
    if status not in STATUSES:
        raise _bad(line, "status", f"must be one of {', '.join(sorted(STATUSES))}")
    return StatementLine(
        statement_id=f"merchantrade:{day.isoformat()}",
        line_no=line,
        amount=amount,
        credit=False,  # each line reports a payout out of our funding wallet
        booked_on=day,
        end_to_end_id=values["payout_reference"],
        rail_reference=values["rail_reference"],
        status=status,
        reversal=status == "RETURNED",
        extra={"fee": fee.amount_str()},
    )


def render_settlement(rows: Iterable[SettlementRow]) -> bytes:
    """Render rows (already wire strings) as a settlement CSV; the simulator's writer."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return out.getvalue().encode()
