"""The Merchantrade daily settlement CSV (our assumed format, version 2): streaming reader with
the file's own proofs, and a streaming writer.

UTF-8 (a BOM is tolerated), comma-separated, RFC 4180 quoting, CRLF or LF. Shaped like the
classic bank files (a file header record, detail records, a control record at the end) so the
file proves itself: whoever reads it can tell a complete file from a cut or altered one::

    HEADER,2025-01-31,MTW-PERKESO-01,9157
    settlement_date,payout_reference,rail_reference,amount,currency,status,fee,reason
    2025-01-31,px-pay-1,MT0000000001,250.00,MYR,PAID,0.50,
    2025-01-31,px-pay-2,MT0000000002,100.00,MYR,RETURNED,0.00,account_closed
    TRAILER,2,MYR,350.00,0.50

- Line 1, the file header: ``HEADER``, the business date (``YYYY-MM-DD``), the funding wallet
  and the file's sequence number (one more each day; a gap means a missing file).
- Line 2, the column names, exactly these in this order.
- One detail row per payout event of the day:

  - ``settlement_date``: ``YYYY-MM-DD``, the day of the event.
  - ``payout_reference``: our idempotency key (the end-to-end id), 1..128 characters.
  - ``rail_reference``: the rail's own payout id.
  - ``amount``/``fee``: decimal strings with exactly the currency's minor digits (``12.34``).
  - ``currency``: ISO 4217, one of the gateway's currencies.
  - ``status``: ``PAID`` (money left) | ``FAILED`` (never paid) | ``RETURNED`` (paid, then the
    money came back) | ``REVERSED`` (the rail reversed its own earlier booking of the payout).
  - ``reason``: Merchantrade's own word for why (empty for ``PAID``), mapped to an ISO 20022
    external return reason code by ``REASON_CODES``; a word not in it is a bad row.

- The last line, the control record: ``TRAILER``, the number of detail rows, then for each
  currency present (in code order) the currency, the sum of its ``amount`` column and the sum
  of its ``fee`` column. An empty day is ``TRAILER,0``.

Reading (``scan_settlement``, ``csv.reader`` over a ``TextIOWrapper``: one row in memory):

- A ``StatementRecord`` (``merchantrade:<date>``, kind ``settlement_csv``) from the header.
- Per detail row a ``StatementLine`` whose ``line_no`` is its physical line number. Kinds:
  ``PAID`` -> ``payout``, ``FAILED`` -> ``not_paid``, ``RETURNED`` -> ``returned``
  (``return_reason`` the ISO code), ``REVERSED`` -> ``reversal``. A non-zero fee becomes a line
  of its own (kind ``fee``, same ``payout_reference``) numbered with the row's line number
  negated (``-7`` is the fee of line 7), so line numbers stay unique and still point at the row.
- A row that cannot be read is a ``BadLine`` naming its physical line and field; reading goes on.
- Proofs at the end: ``record_count`` (the trailer's count equals the detail rows, read or not)
  and one ``control_total`` per currency (amount and fee sums, of every row whose amount and
  currency could be read; a row whose amount could not be read makes the totals unprovable).
  Last, a ``structure`` proof: it holds when the TRAILER was read. No trailer (a cut file)
  fails all three; it is never an exception.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, BinaryIO

from adapters.rails._statements import plain_number, quoted
from gateway.errors import InvalidMessageError
from gateway.money import Money
from gateway.ports.rail import (
    BadLine,
    LineKind,
    StatementItem,
    StatementLine,
    StatementProof,
    StatementRecord,
)

__all__ = [
    "COLUMNS",
    "KINDS",
    "REASON_CODES",
    "STATUSES",
    "SettlementRow",
    "SettlementWriter",
    "parse_settlement",
    "scan_settlement",
    "write_settlement",
]

COLUMNS = (
    "settlement_date",
    "payout_reference",
    "rail_reference",
    "amount",
    "currency",
    "status",
    "fee",
    "reason",
)
KINDS = {
    "PAID": LineKind.payout,
    "FAILED": LineKind.not_paid,
    "RETURNED": LineKind.returned,
    "REVERSED": LineKind.reversal,
}
STATUSES = frozenset(KINDS)
# Merchantrade's words -> ISO 20022 ExternalReturnReason1Code. The simulator writes the words.
REASON_CODES = {
    "invalid_account": "AC01",  # IncorrectAccountNumber
    "account_closed": "AC04",  # ClosedAccountNumber
    "account_blocked": "AC06",  # BlockedAccount
    "insufficient_funds": "AM04",  # InsufficientFunds
    "unspecified": "MS03",  # NotSpecifiedReasonAgentGenerated
}
HEADER_TAG = "HEADER"
TRAILER_TAG = "TRAILER"
_TEXT_LIMIT = 500


SettlementRow = tuple[str, str, str, str, str, str, str, str]


def _bad(line: int, field: str, why: str) -> InvalidMessageError:
    return InvalidMessageError(
        "schema_violation", f"settlement line {line}, field {field}: {why}", line=line, field=field
    )


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        return None


@dataclass(slots=True)
class _Totals:
    """What the detail rows add up to, per currency, for the trailer's proofs."""

    rows: int = 0
    amounts: dict[str, int] = field(default_factory=dict)
    fees: dict[str, int] = field(default_factory=dict)
    unreadable: list[int] = field(default_factory=list)  # lines whose amount could not be read

    def add(self, amount: Money, fee: Money) -> None:
        """Count a detail row that was read."""
        self.rows += 1
        self.amounts[amount.currency] = self.amounts.get(amount.currency, 0) + amount.minor
        self.fees[amount.currency] = self.fees.get(amount.currency, 0) + fee.minor

    def count(self, line: int, row: list[str]) -> None:
        """Count a detail row that could not be read, with its money if that can be."""
        self.rows += 1
        fields = dict(zip(COLUMNS, (v.strip() for v in row), strict=False))
        try:
            amount = Money.parse(fields.get("amount", ""), fields.get("currency", ""))
            fee = Money.parse(fields.get("fee", ""), amount.currency)
        except ValueError:
            self.unreadable.append(line)
            return
        self.amounts[amount.currency] = self.amounts.get(amount.currency, 0) + amount.minor
        self.fees[amount.currency] = self.fees.get(amount.currency, 0) + fee.minor


def _is_utf8(joined: str) -> bool:
    if joined.isascii():
        return True
    try:
        joined.encode("utf-8")  # a lone surrogate is a byte that was not UTF-8
    except UnicodeEncodeError:
        return False
    return True


# No field holds a control character: a reference with one is no payment's, and PostgreSQL
# cannot store a NUL at all (a run would fail on the line instead of quarantining it).
_CONTROL = re.compile("[\x00-\x1f\x7f]")


# Fees are nearly always the same few amounts, and Money is immutable: equal text, one object.
# Errors are not cached (re-raised each time).
_money = functools.lru_cache(maxsize=1024)(Money.parse)


def _row(
    statement_id: str, line: int, values: list[str]
) -> tuple[list[StatementLine], Money, Money]:
    """Read one detail row (its fields stripped): its line and, for a non-zero fee, the fee's
    own line; and its amount and fee for the totals.

    Raises:
        InvalidMessageError: schema_violation naming the line and field.
    """
    if len(values) != len(COLUMNS):
        raise _bad(line, "row", f"expected {len(COLUMNS)} fields, got {len(values)}")
    settled, reference, rail_reference, amount_text, currency, status, fee_text, word = values
    day = _day(settled)
    if day is None:
        raise _bad(line, "settlement_date", "must be YYYY-MM-DD")
    if not reference or len(reference) > 128:
        raise _bad(line, "payout_reference", "must be 1..128 characters")
    if not rail_reference or len(rail_reference) > 128:
        raise _bad(line, "rail_reference", "must be 1..128 characters")
    try:
        amount = _money(amount_text, currency)
    except ValueError as exc:
        field = "amount" if "amount" in str(exc) else "currency"
        raise _bad(line, field, str(exc)) from None
    try:
        fee = _money(fee_text, currency)
    except ValueError as exc:
        raise _bad(line, "fee", str(exc)) from None
    if status not in STATUSES:
        raise _bad(line, "status", f"must be one of {', '.join(sorted(STATUSES))}")
    if word and word not in REASON_CODES:
        raise _bad(line, "reason", f"{word!r} is not one of {', '.join(sorted(REASON_CODES))}")
    if status == "RETURNED" and not word:
        raise _bad(line, "reason", "a RETURNED row must say why")
    kind = KINDS[status]
    extra = {"fee": fee.amount_str()}
    if word:
        extra["reason"] = word
    main = StatementLine(
        statement_id=statement_id,
        line_no=line,
        amount=amount,
        credit=kind in (LineKind.returned, LineKind.reversal),  # money back into the wallet
        booked_on=day,
        end_to_end_id=reference,
        rail_reference=rail_reference,
        status=status,
        reversal=kind == LineKind.reversal,
        return_reason=REASON_CODES[word] if word else None,
        extra=extra,
        kind=kind,
    )
    if fee.minor == 0:
        return [main], amount, fee
    charge = StatementLine(
        statement_id=statement_id,
        line_no=-line,
        amount=fee,
        credit=False,
        booked_on=day,
        end_to_end_id=reference,
        rail_reference=rail_reference,
        status=status,
        extra={"fee_of_line": str(line)},
        kind=LineKind.fee,
    )
    return [main, charge], amount, fee


def _trailer_proofs(
    statement_id: str, line: int, row: list[str] | None, totals: _Totals
) -> Iterator[StatementProof]:
    def proof(check: str, ok: bool, detail: str) -> StatementProof:
        return StatementProof(statement_id, check, ok, detail)

    if row is None:
        yield proof("record_count", False,
                    f"no TRAILER: the file is cut off ({totals.rows} detail rows read)")
        yield proof("control_total", False, "no TRAILER: no control total to check")
        return
    claimed = row[1].strip() if len(row) > 1 else ""
    if plain_number(claimed) == totals.rows:
        yield proof("record_count", True, f"TRAILER (line {line}) counts {claimed} rows: holds")
    elif plain_number(claimed) is None and claimed:
        yield proof("record_count", False,
                    f"TRAILER (line {line}) count {quoted(claimed)} is not a number of rows; "
                    f"the file has {totals.rows} detail rows")
    else:
        yield proof("record_count", False,
                    f"TRAILER (line {line}) counts {claimed or 'nothing'}, the file has "
                    f"{totals.rows} detail rows")
    rest = [v.strip() for v in row[2:]]
    if len(rest) % 3:
        yield proof("control_total", False,
                    f"TRAILER (line {line}): expected currency, amount total, fee total triples")
        return
    stated: dict[str, tuple[str, str]] = {}
    for i in range(0, len(rest), 3):
        stated[rest[i]] = (rest[i + 1], rest[i + 2])
    if not stated and not totals.amounts and not totals.unreadable:
        yield proof("control_total", True, f"TRAILER (line {line}): no amounts, none stated")
    for ccy in sorted({*stated, *totals.amounts}):
        amount = Money(totals.amounts.get(ccy, 0), ccy).amount_str() if ccy in totals.amounts \
            else "0"
        fees = Money(totals.fees.get(ccy, 0), ccy).amount_str() if ccy in totals.fees else "0"
        figures = f"{ccy}: rows add up to {amount} (fees {fees})"
        if ccy not in stated:
            yield proof("control_total", False, f"{figures}; the TRAILER has no {ccy} total")
            continue
        want_amount, want_fee = stated[ccy]
        try:
            wanted = (Money.parse(want_amount, ccy).minor, Money.parse(want_fee, ccy).minor)
        except ValueError as exc:
            yield proof("control_total", False, f"TRAILER {ccy} total unreadable: {exc}")
            continue
        figures += f", TRAILER says {want_amount} (fees {want_fee})"
        if totals.unreadable:
            lines = ", ".join(str(n) for n in totals.unreadable[:10])
            yield proof("control_total", False,
                        f"{figures}; cannot be proved: amounts unreadable on line(s) {lines}")
        elif wanted == (totals.amounts.get(ccy, 0), totals.fees.get(ccy, 0)):
            yield proof("control_total", True, f"{figures}: holds")
        else:
            yield proof("control_total", False, f"{figures}: does not add up")


# A detail row is well under 1 KiB; a physical line longer than this is no row, and is never
# held whole (the csv module's own field limit applies only once a line has been read).
_LINE_LIMIT = 65536
_TOO_LONG = "\x00too long"  # stands for such a line: no row can be it (a NUL is refused)


def _bounded_lines(text: io.TextIOWrapper) -> Iterator[str]:
    """The file's physical lines, a line longer than _LINE_LIMIT read past in pieces and
    given as _TOO_LONG, so the csv reader (and its line numbers) see one line for it. Rows
    end in CRLF: such a line is read past up to its LF."""
    readline = text.readline
    while line := readline(_LINE_LIMIT):
        if len(line) < _LINE_LIMIT or line[-1] == "\n":
            yield line
            continue
        while (rest := readline(_LINE_LIMIT)) and rest[-1] != "\n":
            pass
        yield _TOO_LONG + "\r\n"


def _items(source: BinaryIO) -> Iterator[tuple[StatementItem, InvalidMessageError | None]]:
    """Yield each item with the error ``parse_settlement`` raises for it (None: no error)."""
    # Undecodable bytes survive as lone surrogates so the row holding them is quarantined as a
    # bad line (never guessed at) while the rest of the file is read.
    text = io.TextIOWrapper(source, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        yield from _read(csv.reader(_bounded_lines(text), strict=True))
    finally:
        text.detach()  # the caller's stream stays open (a wrapper closes what it wraps)


def _read(reader: Any) -> Iterator[tuple[StatementItem, InvalidMessageError | None]]:
    try:
        header = next(reader, None)
        columns = next(reader, None) if header is not None else None
    except csv.Error as exc:
        raise _bad(reader.line_num, "header", f"CSV syntax: {exc}") from exc
    if header is None:
        raise _bad(1, "header", "file is empty; a HEADER record is required")
    day = _day(header[1].strip()) if len(header) == 4 and header[0] == HEADER_TAG else None
    if day is None:
        raise _bad(1, "header", f"expected {HEADER_TAG},YYYY-MM-DD,wallet,sequence")
    if columns is None or tuple(c.strip() for c in columns) != COLUMNS:
        raise _bad(2, "columns", f"expected {','.join(COLUMNS)}")
    statement_id = f"merchantrade:{day.isoformat()}"
    sequence = header[3].strip()
    number = plain_number(sequence)
    yield StatementRecord(
        statement_id=statement_id,
        kind="settlement_csv",
        account=header[2].strip(),
        business_date=day,
        sequence=number,
    ), None
    if number is None:
        # Continuity with the previous day's file is what shows none is missing: a file
        # whose number cannot be read does not prove it.
        yield StatementProof(statement_id, "sequence", False,
                             f"HEADER sequence {quoted(sequence)} is not a number (1 to 18 "
                             "digits): continuity with the previous file cannot be checked"), None
    totals = _Totals()
    trailer: tuple[int, list[str]] | None = None
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            error = _bad(start, "row", f"CSV syntax: {exc}")
            totals.rows += 1
            totals.unreadable.append(start)
            yield BadLine(statement_id, start, error.detail, ""), error
            continue
        if not row or row == [""]:
            continue  # a blank line is not a record
        if row == [_TOO_LONG]:
            error = _bad(start, "row", f"longer than {_LINE_LIMIT} characters (read past)")
            totals.rows += 1
            totals.unreadable.append(start)
            yield BadLine(statement_id, start, error.detail, ""), error
            continue
        joined = "".join(row)
        if not _is_utf8(joined):
            error = _bad(start, "row", "not UTF-8")
            totals.rows += 1
            totals.unreadable.append(start)
            text = ",".join(row).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            yield BadLine(statement_id, start, error.detail, text[:_TEXT_LIMIT]), error
            continue
        if (control := _CONTROL.search(joined)) is not None:
            error = _bad(start, "row", f"a control character (U+{ord(control[0]):04X})")
            totals.count(start, row)
            text = _CONTROL.sub("\ufffd", ",".join(row))
            yield BadLine(statement_id, start, error.detail, text[:_TEXT_LIMIT]), error
            continue
        if trailer is not None:
            error = _bad(start, "row", "a row after the TRAILER")
            yield BadLine(statement_id, start, error.detail, ",".join(row)[:_TEXT_LIMIT]), error
            continue
        if row[0] == TRAILER_TAG:
            trailer = (start, row)
            continue
        try:
            lines, amount, fee = _row(statement_id, start, [v.strip() for v in row])
        except InvalidMessageError as exc:
            totals.count(start, row)  # its amount may still be readable for the control total
            yield BadLine(statement_id, start, exc.detail, ",".join(row)[:_TEXT_LIMIT]), exc
            continue
        totals.add(amount, fee)  # what ``count`` would find: the same fields, already read
        for line in lines:
            yield line, None
    where, trailer_row = trailer if trailer is not None else (reader.line_num, None)
    for proof in _trailer_proofs(statement_id, where, trailer_row, totals):
        yield proof, None if proof.ok else _bad(where, "trailer", proof.detail)
    if trailer is None:
        detail = f"no TRAILER after line {where}: the file is cut off"
        yield StatementProof(statement_id, "structure", False, detail), _bad(
            where, "trailer", detail)
    else:
        yield StatementProof(statement_id, "structure", True,
                             f"HEADER, {totals.rows} rows and TRAILER: complete"), None


def scan_settlement(source: BinaryIO) -> Iterator[StatementItem]:
    """Read a settlement CSV as a stream of its record, lines, bad rows and proofs.

    Raises:
        InvalidMessageError: schema_violation if the HEADER record or the column names are not
            as specified, or the file is not UTF-8 (before anything is yielded).
    """
    for item, _ in _items(source):
        yield item


def parse_settlement(data: bytes) -> list[StatementLine]:
    """Parse a settlement CSV into statement lines, refusing anything not exactly as specified.

    Built on ``scan_settlement``: the first bad row or failed proof raises.

    Raises:
        InvalidMessageError: schema_violation naming the line and field.
    """
    lines: list[StatementLine] = []
    for item, error in _items(io.BytesIO(data)):
        if error is not None:
            raise error
        if isinstance(item, StatementLine):
            lines.append(item)
    return lines


class SettlementWriter:
    """Write a settlement CSV row by row, keeping only the trailer's running totals."""

    def __init__(self, out: BinaryIO, day: date, wallet: str, sequence: int) -> None:
        self._text = codecs.getwriter("utf-8")(out)
        self._csv = csv.writer(self._text, lineterminator="\r\n")
        self._csv.writerow((HEADER_TAG, day.isoformat(), wallet, str(sequence)))
        self._csv.writerow(COLUMNS)
        self.rows = 0
        self.amounts: dict[str, int] = {}
        self.fees: dict[str, int] = {}

    def write(self, row: SettlementRow) -> None:
        """Write one detail row (wire strings) and count it into the trailer."""
        self._csv.writerow(row)
        self.rows += 1
        amount, fee = Money.parse(row[3], row[4]), Money.parse(row[6], row[4])
        self.amounts[amount.currency] = self.amounts.get(amount.currency, 0) + amount.minor
        self.fees[amount.currency] = self.fees.get(amount.currency, 0) + fee.minor

    def close(self, *, rows: int | None = None, amounts: dict[str, int] | None = None) -> None:
        """Write the trailer (``rows``/``amounts`` override the true figures: a fault)."""
        trailer = [TRAILER_TAG, str(self.rows if rows is None else rows)]
        for ccy in sorted(self.amounts):
            total = (amounts or self.amounts).get(ccy, self.amounts[ccy])
            fees = Money(self.fees[ccy], ccy).amount_str()
            trailer += [ccy, Money(total, ccy).amount_str(), fees]
        self._csv.writerow(trailer)
        self._text.flush()


def write_settlement(
    out: BinaryIO, day: date, wallet: str, sequence: int, rows: Iterable[SettlementRow]
) -> None:
    """Write a complete settlement CSV of ``rows`` (wire strings), streaming."""
    writer = SettlementWriter(out, day, wallet, sequence)
    for row in rows:
        writer.write(row)
    writer.close()
