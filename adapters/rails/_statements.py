"""What both rails' statement generators take, and the simulators' statement calendar.

``GeneratedPayout`` is one paid payout for ``adapters.rails.<name>.statements.write_statement``
(tests and ``bench.reconcile`` write statements of any size with them, streaming). The
simulators book in the rails' own day: Malaysian banks and wallets close their books at
midnight in ``Asia/Kuala_Lumpur``, so a payout paid at 17:00 UTC belongs to the next day's
statement. Sequence numbers are the days since ``SEQUENCE_ORIGIN``, so they continue day to day
and a statement's number is the same however often it is fetched.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import NamedTuple
from zoneinfo import ZoneInfo

from gateway.money import Money

__all__ = [
    "KUALA_LUMPUR",
    "SEQUENCE_ORIGIN",
    "GeneratedPayout",
    "business_day",
    "closing_time",
    "sequence_of",
    "swap_currency",
]

KUALA_LUMPUR = ZoneInfo("Asia/Kuala_Lumpur")
SEQUENCE_ORIGIN = date(2000, 1, 1)


class GeneratedPayout(NamedTuple):
    """One paid payout to write into a generated statement."""

    payment_id: str  # the end-to-end id / payout reference (the payment id is the rail's key)
    amount: Money
    paid_on: date


def business_day(moment: datetime) -> date:
    """Return the rail's booking day of an aware moment."""
    return moment.astimezone(KUALA_LUMPUR).date()


def closing_time(day: date) -> datetime:
    """Return when the rail closes ``day``'s books (the statement's creation time)."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=KUALA_LUMPUR)


def sequence_of(day: date) -> int:
    """Return the statement sequence number of ``day`` (one more each day)."""
    return (day - SEQUENCE_ORIGIN).days + 1


def swap_currency(currency: str) -> str:
    """Return another payout currency with the same minor units (a currency-mismatch fault)."""
    return "IDR" if currency == "MYR" else "MYR"
