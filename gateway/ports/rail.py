"""The rail adapter seam: what the hub needs from a payout rail, and nothing more.

A rail adapter translates and transports; it never touches the database and never decides to
retry. It raises the ``DeliveryError`` subclasses of ``gateway.errors`` and the dispatcher's one
retry policy decides what happens next:

- ``TransientDeliveryError``: the rail certainly did not take the payout (connection refused,
  429/503 before acceptance); it may be sent again.
- ``OutcomeUnknownError``: the request may have reached the rail (timeout or reset after
  sending, a 5xx from a rail that might have acted): ask ``status`` before sending again.
- ``PermanentDeliveryError``: the rail refused the payout for good (bad account, bad request).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, BinaryIO, Protocol

import httpx

from gateway.errors import DeliveryError
from gateway.money import Money

__all__ = [
    "BadLine",
    "LineKind",
    "PayoutInstruction",
    "PayoutResult",
    "PayoutState",
    "PayoutStatus",
    "RailAdapter",
    "StatementItem",
    "StatementLine",
    "StatementProof",
    "StatementRecord",
]


class PayoutState(StrEnum):
    """A payout's state as the rail reports it."""

    accepted = "accepted"
    processing = "processing"
    paid = "paid"
    failed = "failed"
    returned = "returned"
    cancelled = "cancelled"  # stopped by the hub's cancel call before any money moved


@dataclass(frozen=True, slots=True)
class PayoutInstruction:
    """One payout to send. ``idempotency_key`` is derived from the payment id, never an attempt."""

    payment_id: str
    idempotency_key: str
    amount: Money
    beneficiary_name: str
    provider: str
    account: str
    reference: str  # remittance information / end-to-end id shown to the beneficiary


@dataclass(frozen=True, slots=True)
class PayoutStatus:
    """What the rail says of one payout."""

    idempotency_key: str
    state: PayoutState
    rail_reference: str | None = None
    reason: str | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PayoutResult:
    """One payout's outcome in a multi-payout submit: the rail's status, or why there is none.

    Exactly one of ``status`` and ``error`` is set (``RailAdapter.submit_each``).
    """

    idempotency_key: str
    status: PayoutStatus | None = None
    error: DeliveryError | None = None


class LineKind(StrEnum):
    """What a statement line says happened, in the gateway's terms (the adapter maps its rail's
    statuses and bank transaction codes onto these; nothing past the seam reads them raw)."""

    payout = "payout"  # money left the account for one payout
    not_paid = "not_paid"  # the rail reports the payout and that no money moved (failed)
    returned = "returned"  # money came back for a payout that had been paid (reason_code says why)
    reversal = "reversal"  # the rail reversed an earlier booking of a payout
    fee = "fee"  # the rail's charge, an explicit line (never a matching tolerance)
    fx = "fx"  # a currency conversion booked separately
    other = "other"  # anything else (funding, interest...): unknown unless ops explain it


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One entry of a rail's statement (settlement CSV, camt.053/054), for reconciliation.

    ``line_no`` is unique within the file and stable across re-reads of the same bytes (a
    physical line for CSV, a running transaction number for camt), so a report can point at it.
    Its texts hold no control character (a line with one is a ``BadLine``): they are stored.
    """

    statement_id: str
    line_no: int
    amount: Money
    credit: bool  # True for CRDT, False for DBIT
    booked_on: date
    value_on: date | None = None
    end_to_end_id: str | None = None
    rail_reference: str | None = None
    status: str = "BOOK"
    reversal: bool = False
    return_reason: str | None = None  # ISO 20022 external return reason code (AC01, AC04...)
    extra: Mapping[str, str] = field(default_factory=dict)
    kind: LineKind = LineKind.payout
    uetr: str | None = None
    # Set when the line is one transaction of a batched entry (one booking, many payouts): the
    # entry's own reference, shared by its transactions, so a report can show the batch.
    batch_ref: str | None = None


@dataclass(frozen=True, slots=True)
class StatementRecord:
    """One statement within a file (a camt ``Stmt``/``Ntfctn``, or the CSV file itself).

    Yielded before the lines it holds. ``sequence`` is the electronic sequence number the
    gateway checks for continuity with the previous statement of the same account.
    """

    statement_id: str
    kind: str  # camt.053 | camt.054 | settlement_csv
    account: str
    business_date: date | None
    sequence: int | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that could not be read: quarantined and reported, never guessed at; the rest of
    the file is still read."""

    statement_id: str
    line_no: int
    reason: str  # one line naming the field
    text: str  # the line or entry as received, truncated to 500 characters


@dataclass(frozen=True, slots=True)
class StatementProof:
    """A statement's claim about itself (balances, batch totals, record count, control total,
    the document's own structure) and whether it holds. A failed proof makes a reconciliation
    run ``incomplete``: a statement that does not add up cannot prove a payment."""

    statement_id: str
    check: str  # balance | batch | record_count | control_total | structure
    ok: bool
    detail: str


StatementItem = StatementRecord | StatementLine | BadLine | StatementProof


class RailAdapter(Protocol):
    """A payout rail. Implementations live in ``adapters/rails/<name>/``."""

    name: str

    async def submit(
        self, client: httpx.AsyncClient, payouts: Sequence[PayoutInstruction]
    ) -> list[PayoutStatus]:
        """Send payouts (one request each, or one batch file) and return the rail's answers.

        Args:
            client: the hub's shared HTTP client; every call sets an explicit timeout.
            payouts: instructions, each with its idempotency key.

        Returns:
            One status per payout, in the same order.

        Raises:
            TransientDeliveryError, OutcomeUnknownError, PermanentDeliveryError: for a batch
                rail, about the whole batch; a per-request rail returns per-payout failures as
                statuses only when the rail answered, and raises otherwise.
        """
        ...

    async def submit_each(
        self, client: httpx.AsyncClient, payouts: Sequence[PayoutInstruction]
    ) -> list[PayoutResult]:
        """Send payouts like ``submit``, answering per payout instead of raising for all.

        The payout handler calls this, so one payout's error never hides another's answer.

        Args:
            client: the hub's shared HTTP client; every call sets an explicit timeout.
            payouts: instructions, each with its idempotency key.

        Returns:
            One result per payout, in the same order: the rail's status, or the
            ``DeliveryError`` that stopped that payout (for a batch rail, the batch's error on
            every payout of the batch).
        """
        ...

    async def status(self, client: httpx.AsyncClient, idempotency_key: str) -> PayoutStatus | None:
        """Ask the rail what became of a payout; ``None`` if the rail never received it.

        Raises:
            TransientDeliveryError: the rail could not be asked now.
        """
        ...

    async def cancel(self, client: httpx.AsyncClient, idempotency_key: str) -> PayoutStatus:
        """Ask the rail to stop a payout; return its state afterwards (the rail's truth).

        The rail cancels a payout it holds that has not paid yet, and records the key as
        cancelled if it never received it (a late submit with that key is then answered
        ``cancelled``, never paid). A payout already paid, failed or returned keeps its state.

        Raises:
            TransientDeliveryError: the rail could not be asked now (ask again later).
        """
        ...

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> PayoutStatus:
        """Verify a status callback's authenticity and parse it.

        Raises:
            AuthError: signature_invalid if the callback is not authentic.
            InvalidMessageError: schema_violation if it cannot be parsed.
        """
        ...

    async def fetch_statement(self, client: httpx.AsyncClient, day: date) -> bytes:
        """Download the rail's statement of ``day`` exactly as served (for ``parse_statement``).

        Raises:
            TransientDeliveryError: not available yet, or the rail could not be asked now.
        """
        ...

    def parse_statement(self, data: bytes) -> list[StatementLine]:
        """Parse a statement file (settlement CSV, camt.053 or camt.054) into lines.

        Raises:
            InvalidMessageError: schema_violation naming the line and field that is wrong.
        """
        ...

    def scan_statement(self, source: BinaryIO) -> Iterator[StatementItem]:
        """Read a statement as a stream, in constant memory, for reconciliation.

        Yields each ``StatementRecord`` before its lines, a ``BadLine`` for a line that cannot
        be read (reading goes on), and a ``StatementProof`` for every check the file makes of
        itself (after the lines it covers). A document that breaks off yields a failed
        ``structure`` proof and ends. The caller advances (and closes) the iterator from one
        thread only: an XML reader's parser (lxml) must not move between threads mid-document.

        Raises:
            InvalidMessageError: the input is not this rail's statement at all (unknown_type,
                or schema_violation naming what is wrong), before anything is yielded.
        """
        ...


RailConfig = Mapping[str, Any]
