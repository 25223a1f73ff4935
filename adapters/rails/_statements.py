"""What both rails' statement generators take, and the simulators' statement calendar.

``GeneratedPayout`` is one paid payout for ``adapters.rails.<name>.statements.write_statement``
(tests and ``bench.reconcile`` write statements of any size with them, streaming). The
simulators book in the rails' own day: they close their books at ``CUTOFF`` (23:30 in
``Asia/Kuala_Lumpur``, the gateway's default ``cutoff`` for a rail), so a payout paid at 23:45
KL, or at 17:00 UTC (01:00 KL), belongs to the next day's statement, and the statement of a day
is complete from its cut-off on (when ``gateway scheduler`` fetches it). Sequence numbers are
the days since ``SEQUENCE_ORIGIN``, so they continue day to day and a statement's number is the
same however often it is fetched.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from gateway.money import Money

__all__ = [
    "CUTOFF",
    "KUALA_LUMPUR",
    "SEQUENCE_ORIGIN",
    "GeneratedPayout",
    "business_day",
    "closing_time",
    "plain_number",
    "quoted",
    "sequence_of",
    "swap_currency",
]

KUALA_LUMPUR = ZoneInfo("Asia/Kuala_Lumpur")
SEQUENCE_ORIGIN = date(2000, 1, 1)
CUTOFF = time(23, 30)


class GeneratedPayout(NamedTuple):
    """One paid payout to write into a generated statement."""

    payment_id: str  # the end-to-end id / payout reference (the payment id is the rail's key)
    amount: Money
    paid_on: date


def business_day(moment: datetime) -> date:
    """Return the rail's booking day of an aware moment (after the cut-off: the next day)."""
    local = moment.astimezone(KUALA_LUMPUR)
    return local.date() + timedelta(days=1) if local.time() >= CUTOFF else local.date()


def closing_time(day: date) -> datetime:
    """Return when the rail closes ``day``'s books (the statement's creation time)."""
    return datetime.combine(day, CUTOFF, tzinfo=KUALA_LUMPUR)


def plain_number(text: str) -> int | None:
    """A count or sequence number as a statement states it: 1 to 18 ASCII digits, else None.

    ``str.isdigit`` alone also passes superscripts (which ``int`` refuses) and thousands of
    digits (which ``int`` refuses past 4,300); no count or sequence number has 19.
    """
    return int(text) if 0 < len(text) <= 18 and text.isascii() and text.isdigit() else None


def quoted(value: str, limit: int = 20) -> str:
    """A statement's field as an error quotes it: ``repr`` of its first ``limit`` characters
    (a field can be megabytes long; a reason is one line)."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


def sequence_of(day: date) -> int:
    """Return the statement sequence number of ``day`` (one more each day)."""
    return (day - SEQUENCE_ORIGIN).days + 1


def swap_currency(currency: str) -> str:
    """Return another payout currency with the same minor units (a currency-mismatch fault)."""
    return "IDR" if currency == "MYR" else "MYR"
