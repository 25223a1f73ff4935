"""An in-memory rail at the adapter seam, with its own ledger and scripted faults."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from gateway.errors import (
    AuthError,
    DeliveryError,
    OutcomeUnknownError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from gateway.ports.rail import (
    PayoutInstruction,
    PayoutResult,
    PayoutState,
    PayoutStatus,
    StatementLine,
)


class Crash(BaseException):
    """The dispatcher process dies here (SIGKILL): nothing after it runs or is recorded."""


@dataclass
class FakePayout:
    instruction: PayoutInstruction | None  # None: a key cancelled before it arrived
    reference: str
    state: PayoutState = PayoutState.accepted
    paid_count: int = 0
    received: int = 1  # how many submits with this key reached the rail


class FakeRail:
    """Faults for the next submits (one per payout), in order:

    ``transient`` (not received), ``lost`` (not received, answer lost: unknown outcome),
    ``unknown_after`` (received and acted on, answer lost), ``permanent`` (refused),
    ``crash`` (received and acted on, then the dispatcher dies: ``Crash`` is raised),
    ``crash_before`` (the dispatcher dies before the request leaves), ``throttle`` (429 with
    Retry-After: 600, not received).
    ``status_faults``: ``transient`` for the next status queries.
    """

    name = "fake"

    def __init__(self) -> None:
        self.payouts: dict[str, FakePayout] = {}
        self.submit_faults: list[str] = []
        self.status_faults: list[str] = []
        self.submits = 0
        self.status_calls = 0
        self.cancel_calls = 0

    # -- the seam ----------------------------------------------------------------------------

    async def submit(self, client: httpx.AsyncClient,
                     payouts: Sequence[PayoutInstruction]) -> list[PayoutStatus]:
        results = await self.submit_each(client, payouts)
        for r in results:
            if r.error is not None:
                raise r.error
        return [r.status for r in results if r.status is not None]

    async def submit_each(self, client: httpx.AsyncClient,
                          payouts: Sequence[PayoutInstruction]) -> list[PayoutResult]:
        out = []
        for p in payouts:
            self.submits += 1
            fault = self.submit_faults.pop(0) if self.submit_faults else None
            if fault == "crash_before":
                raise Crash(f"dispatcher killed before sending {p.idempotency_key}")
            err: DeliveryError | None = None
            if fault == "transient":
                err = TransientDeliveryError("connection refused")
            elif fault == "lost":
                err = OutcomeUnknownError("read timeout (request lost)")
            elif fault == "permanent":
                err = PermanentDeliveryError("HTTP 422 invalid_account")
                err.http_status = 422
            elif fault == "throttle":
                err = TransientDeliveryError("HTTP 429 throttled")
                err.http_status, err.retry_after = 429, 600
            if err is not None:
                out.append(PayoutResult(p.idempotency_key, error=err))
                continue
            existing = self.payouts.get(p.idempotency_key)
            if existing is None:
                existing = self.payouts[p.idempotency_key] = FakePayout(
                    p, f"FK{len(self.payouts) + 1:06d}", received=0)
            elif existing.instruction is None:  # tombstone: answered cancelled, never paid
                out.append(PayoutResult(p.idempotency_key, status=self._status(existing)))
                continue
            elif existing.instruction != p:
                out.append(PayoutResult(p.idempotency_key,
                                        error=PermanentDeliveryError("HTTP 409 key reused")))
                continue
            existing.received += 1
            if fault == "crash":
                raise Crash(f"dispatcher killed while sending {p.idempotency_key}")
            if fault == "unknown_after":
                out.append(PayoutResult(p.idempotency_key,
                                        error=OutcomeUnknownError("HTTP 502 after acting")))
                continue
            out.append(PayoutResult(p.idempotency_key, status=self._status(existing)))
        return out

    async def status(self, client: httpx.AsyncClient, idempotency_key: str) -> PayoutStatus | None:
        self.status_calls += 1
        if self.status_faults:
            self.status_faults.pop(0)
            raise TransientDeliveryError("status: connection refused")
        p = self.payouts.get(idempotency_key)
        return self._status(p) if p else None

    async def cancel(self, client: httpx.AsyncClient, idempotency_key: str) -> PayoutStatus:
        self.cancel_calls += 1
        p = self.payouts.get(idempotency_key)
        if p is None:
            p = self.payouts[idempotency_key] = FakePayout(
                None, f"FK{len(self.payouts) + 1:06d}", PayoutState.cancelled, received=0)
        elif p.state in (PayoutState.accepted, PayoutState.processing):
            p.state = PayoutState.cancelled
        return self._status(p)

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> PayoutStatus:
        if headers.get("x-fake-signature") != "good":
            raise AuthError("signature_invalid", "bad callback signature")
        doc = json.loads(body)
        return PayoutStatus(doc["key"], PayoutState(doc["state"]), doc.get("reference"),
                            doc.get("reason"))

    def parse_statement(self, data: bytes) -> list[StatementLine]:
        return []

    # -- test control ------------------------------------------------------------------------

    def _status(self, p: FakePayout) -> PayoutStatus:
        key = next(k for k, v in self.payouts.items() if v is p)
        return PayoutStatus(key, p.state, p.reference,
                            "account_blocked" if p.state == PayoutState.failed else None)

    def settle(self, key: str, state: PayoutState = PayoutState.paid) -> None:
        p = self.payouts[key]
        if state == PayoutState.paid and p.state != PayoutState.paid:
            p.paid_count += 1
        p.state = state

    def callback(self, key: str) -> bytes:
        p = self.payouts[key]
        return json.dumps({"key": key, "state": p.state.value, "reference": p.reference}).encode()

    def ledger(self) -> dict[str, int]:
        return {k: p.paid_count for k, p in self.payouts.items()}
