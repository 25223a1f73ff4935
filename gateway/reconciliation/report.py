"""A run's reports: ``summary.json``, ``items.csv`` and the printed table. Byte-deterministic.

Every byte is a function of stored data only (the run row and its items in ``seq`` order): no
clock, no locale, no dict order. So a re-run of the same inputs rewrites identical files, and
the hashes in the run's manifest name exactly what was written.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from gateway.money import MINOR_UNITS

__all__ = ["CSV_HEADER", "amount", "csv_header", "csv_row", "csv_rows", "render_table",
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


def _fields(r: Any) -> list[object]:
    # None is written as an empty field and anything else as str() of it: the csv writer's
    # own rules, not converted here first (a million-line report would pay for it twice).
    return [
        r["seq"], r["kind"], r["subject"], r["payment_id"], r["statement_id"], r["line_no"],
        r["line_kind"], r["batch_ref"], r["end_to_end_id"], r["rail_reference"],
        r["value_on"].isoformat() if r["value_on"] else "",
        amount(r["ledger_minor"], r["ledger_currency"]) if r["ledger_currency"] else "",
        r["ledger_currency"],
        amount(r["statement_minor"], r["statement_currency"]) if r["statement_currency"]
        else "", r["statement_currency"], r["reason_code"], r["proposals"], r["detail"],
    ]


def csv_row(r: Any) -> bytes:
    """One item as a CSV row (from a stored item row)."""
    return _csv(_fields(r))


def csv_rows(rows: Iterable[Any]) -> bytes:
    """Items as CSV rows, the bytes of ``csv_row`` of each joined (one writer for a page)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(_fields(r) for r in rows)
    return buf.getvalue().encode("utf-8")


def summary_bytes(doc: Mapping[str, Any]) -> bytes:
    """summary.json: sorted keys, two-space indent, UTF-8, one trailing newline."""
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def render_table(summary: Mapping[str, Any]) -> str:
    """The summary as people read it: counts and totals per kind and currency, the bridge."""
    out = [f"reconciliation {summary['rail']} {summary['business_date']}  run "
           f"{summary['run_id']}  verdict {summary['verdict'].upper()}", ""]
    rows = [("kind", "currency", "items", "ledger", "statement")]
    for kind, by_cur in sorted(summary["by_kind"].items()):
        for cur, t in sorted(by_cur.items()):
            rows.append((kind, cur, str(t["count"]), t["ledger"], t["statement"]))
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
