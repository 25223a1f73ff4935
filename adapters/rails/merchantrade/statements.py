"""Generate Merchantrade settlement CSVs of any size, streaming (tests and ``bench.reconcile``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import BinaryIO

from adapters.rails._statements import GeneratedPayout, sequence_of
from adapters.rails.merchantrade.settlement import SettlementWriter
from gateway.money import Money

__all__ = ["write_statement"]


def write_statement(
    out: BinaryIO,
    payouts: Iterable[GeneratedPayout],
    day: date,
    *,
    wallet: str = "MTW-PERKESO-01",
    fee: Decimal = Decimal("0"),
) -> int:
    """Write the settlement CSV of ``day`` with one ``PAID`` row per payout; return the rows.

    One pass over ``payouts`` (a generator is fine) and one row in memory at a time. A non-zero
    ``fee`` adds a fee line per row when read back.
    """
    writer = SettlementWriter(out, day, wallet, sequence_of(day))
    for n, p in enumerate(payouts, start=1):
        writer.write((p.paid_on.isoformat(), p.payment_id, f"MT{n:010d}", p.amount.amount_str(),
                      p.amount.currency, "PAID", Money.of(fee, p.amount.currency).amount_str(),
                      ""))
    writer.close()
    return writer.rows
