"""A run's reports: ``summary.json``, ``items.csv`` and the printed table. Byte-deterministic.

Every byte is a function of stored data only (the run row and its items in ``seq`` order): no
clock, no locale, no dict order. So a re-run of the same inputs rewrites identical files, and
the hashes in the run's manifest name exactly what was written.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from gateway.money import MINOR_UNITS

__all__ = ["CSV_HEADER", "ITEM_FIELDS", "amount", "csv_header", "csv_records", "render_table",
           "summary_bytes"]

CSV_HEADER = ("seq", "kind", "subject", "payment_id", "statement_id", "line_no", "line_kind",
              "batch_ref", "end_to_end_id", "rail_reference", "value_on", "ledger_amount",
              "ledger_currency", "statement_amount", "statement_currency", "reason_code",
              "proposals", "detail")


def amount(minor: int, currency: str | None) -> str:
    """Minor units as a decimal string of the currency's digits (2 for a code we do not
    list: statements carry currencies the gateway never pays in)."""
    digits = MINOR_UNITS.get(currency or "", 2)
    if digits == 0:
        return str(minor)
    # Integer arithmetic, once per amount of a million-line report: the same digits as
    # Decimal(minor).scaleb(-digits).quantize(...), several times cheaper.
    whole, frac = divmod(abs(minor), 10 ** digits)
    return f"{'-' if minor < 0 else ''}{whole}.{frac:0{digits}d}"


def _csv(values: Iterable[object]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue().encode("utf-8")


def csv_header() -> bytes:
    return _csv(CSV_HEADER)


# An item as a record: the stored item's columns in this order (its key left out). A run
# writes these records and makes items.csv from them; a re-run reads them back in this order
# and makes it again (``csv_records``), the same bytes.
ITEM_FIELDS = ("run_pk", "seq", "kind", "subject", "payment_pk", "payment_id", "statement_id",
               "line_no", "line_kind", "batch_ref", "end_to_end_id", "rail_reference",
               "value_on", "ledger_minor", "ledger_currency", "statement_minor",
               "statement_currency", "reason_code", "proposals", "detail")


def _fields(r: Sequence[Any]) -> tuple[object, ...]:
    # None is written as an empty field and anything else as str() of it: the csv writer's
    # own rules, not converted here first (a million-line report would pay for it twice).
    (_, seq, kind, subject, _, payment_id, statement_id, line_no, line_kind, batch_ref, e2e,
     ref, value_on, ledger_minor, ledger_cur, stmt_minor, stmt_cur, reason, proposals,
     detail) = r
    ledger = amount(ledger_minor, ledger_cur) if ledger_cur else ""
    # Most items are matches, the same amount on both sides: written once, used twice.
    same = stmt_minor == ledger_minor and stmt_cur == ledger_cur
    return (seq, kind, subject, payment_id, statement_id, line_no, line_kind, batch_ref, e2e,
            ref, value_on.isoformat() if value_on else "", ledger, ledger_cur,
            ledger if same else amount(stmt_minor, stmt_cur) if stmt_cur else "", stmt_cur,
            reason, proposals, detail)


def csv_records(records: Iterable[Sequence[Any]]) -> bytes:
    """Items (records in ``ITEM_FIELDS`` order) as items.csv rows, one writer for a page."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(map(_fields, records))
    return buf.getvalue().encode("utf-8")


def summary_bytes(doc: Mapping[str, Any]) -> bytes:
    """summary.json: sorted keys, two-space indent, UTF-8, one trailing newline."""
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def render_table(summary: Mapping[str, Any]) -> str:
    """The summary as people read it: counts and totals per kind and currency, the bridge."""
    out = [f"reconciliation {summary['rail']} {summary['business_date']}  run "
           f"{summary['run_id']}  verdict {summary['verdict'].upper()}", ""]
    rows = [("kind", "currency", "items", "ledger", "statement")]
    counts = summary.get("counts", {})
    for kind, by_cur in sorted(summary["by_kind"].items()):
        for cur, t in sorted(by_cur.items()):
            rows.append((kind, cur, str(t["count"]), t["ledger"], t["statement"]))
        if not by_cur:  # items without money (a quarantined line): counted all the same
            rows.append((kind, "-", str(counts.get(kind, 0)), "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for i, r in enumerate(rows):
        out.append("  ".join(c.ljust(w) if j < 2 else c.rjust(w)
                             for j, (c, w) in enumerate(zip(r, widths, strict=True))))
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    out += ["", "bridge: ledger - statement = explained + residual"]
    for cur, b in sorted(summary["bridge"].items()):
        out.append(f"  {cur}: {b['ledger']} - {b['statement']} = {b['explained']} + "
                   f"{b['residual']}" + ("" if Decimal(b["residual"]) == 0 else "  <-- residual"))
    for problem in summary.get("problems", []):
        out.append(f"incomplete: {problem}")
    return "\n".join(out) + "\n"
