"""Generate camt.053 statements of any size, streaming (tests and ``bench.reconcile``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from typing import BinaryIO

from adapters.rails._statements import GeneratedPayout, closing_time, sequence_of
from adapters.rails.iso20022.camt import CamtEntry, CamtRecord, CamtTx, write_camt

__all__ = ["uetr_of", "write_statement"]


def uetr_of(end_to_end_id: str) -> str:
    """Return the UETR the simulated bank gives a payout (stable: derived from its id)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"px-gateway:{end_to_end_id}"))


def write_statement(
    out: BinaryIO,
    payouts: Iterable[GeneratedPayout],
    day: date,
    *,
    account: str = "MY-PERKESO-0001",
    opening: Mapping[str, int] | None = None,
    version: str = "08",
) -> int:
    """Write the camt.053 of ``day`` with one ``DBIT`` entry per payout; return the entries.

    ``payouts`` is read twice (the closing balances come before the entries in camt.053), so
    pass a sequence or another re-iterable, not a one-shot iterator; each pass holds one entry
    at a time. ``opening`` maps currency to the opening balance in signed minor units
    (default: 0 for every currency paid, so the closing balance is minus the day's total).
    """
    if iter(payouts) is payouts:
        raise TypeError("payouts is read twice: pass a re-iterable, not an iterator")
    start = dict(opening or {})
    closing = dict(start)
    count = 0
    for p in payouts:
        count += 1
        start.setdefault(p.amount.currency, 0)
        closing[p.amount.currency] = closing.get(p.amount.currency, 0) - p.amount.minor

    def entries() -> Iterator[CamtEntry]:
        for n, p in enumerate(payouts, start=1):
            tx = CamtTx(p.payment_id, p.amount, uetr_of(p.payment_id))
            yield CamtEntry(p.amount, False, p.paid_on, f"BK{n:010d}", [tx])

    record = CamtRecord(f"STMT-{day:%Y%m%d}", account, closing_time(day), day,
                        sequence_of(day), start, closing)
    write_camt(out, record, entries(), version=version)
    return count
