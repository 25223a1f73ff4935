"""An ISO 20022 bank rail simulator (loopback only) for tests, the demo and benchmarks.

Endpoints (all signed like the adapter's requests, ``adapters.rails._hmac``):

- ``POST /pain001``: a pain.001.001.09 batch; answered 200 with a pain.002 acknowledgement.
  Idempotent by ``MsgId`` (same MsgId, same transactions: the current statuses; different
  transactions: 409) and by ``EndToEndId`` for ever (a known id with the same content is not paid
  again and reports its status; with other content it is rejected ``RJCT``/``AM05``).
- ``GET /pain002/{EndToEndId}``: a pain.002 for one transaction, or 404.
- ``GET /camt053/{YYYY-MM-DD}?version=08|02``: the statement of the day (booked in
  Asia/Kuala_Lumpur), generated from the ledger: ``OPBD`` (``funding`` plus every earlier
  booking) and ``CLBD`` balances per currency, ``ElctrncSeqNb`` the day's number (continuing day
  to day), a ``DBIT`` entry per paid transaction (or, with ``batch_booking``, one per batch and
  currency with a ``TxDtls`` each and ``Btch/NbOfTxs``), a ``CRDT`` ``PMNT/ICDT/RRTN`` entry
  with ``RtrInf/Rsn/Cd`` for each return and a ``CRDT`` entry with ``RvslInd`` true for each
  reversal. The same ledger and faults give the same bytes. ``statement_*`` faults apply
  (``adapters.simulation``); ``statement_late`` answers 404.
- ``GET /camt054/{YYYY-MM-DD}``: the same day's bookings as a camt.054 notification.
- ``POST /_sim/return?key=K&code=AC04`` / ``sim.return_payout(key, code)``: a paid payout comes
  back with an ISO reason (AC01, AC04, AC06, AM04, MS03...); ``POST /_sim/reverse?key=K`` /
  ``sim.reverse_payout(key)``: the bank reverses its booking. ``sim.clock`` sets the day.

Lifecycle and test rules as in ``adapters.rails._sim.lifecycle`` (``FAIL``/``RET`` accounts);
pain.002 codes: accepted ``ACCP``, processing ``ACSP``, paid ``ACSC``, failed ``RJCT``/``AC04``,
returned ``ACSC``/``RTRN``. State changes are pushed as signed pain.002 callbacks when
``callback_url`` is set. Faults and admin API as in the Merchantrade simulator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from adapters.rails import _hmac
from adapters.rails._sim import CallbackSender, LedgerEntry, SimApp, add_fault_routes
from adapters.rails._sim.lifecycle import next_state
from adapters.rails._statements import business_day, closing_time, sequence_of, swap_currency
from adapters.rails.iso20022.camt import CamtEntry, CamtRecord, CamtTx, write_camt
from adapters.rails.iso20022.pain import (
    Pain001Tx,
    StatusEntry,
    build_pain002,
    parse_pain001,
)
from adapters.rails.iso20022.statements import uetr_of
from adapters.simulation import Fault, Faults, LoopbackServed, run_blocking
from gateway.errors import AuthError, InvalidMessageError
from gateway.money import Money
from gateway.ports.rail import PayoutState

__all__ = ["Iso20022SimConfig", "Iso20022Simulator", "SimTx", "create_app", "serve"]

XML = "application/xml"
# The lifecycle's return reasons as ISO 20022 return reason codes.
_RETURN_CODES = {"account_closed": "AC04", "account_blocked": "AC06"}
_CODES = {
    PayoutState.accepted: ("ACCP", None),
    PayoutState.processing: ("ACSP", None),
    PayoutState.paid: ("ACSC", None),
    PayoutState.failed: ("RJCT", "AC04"),
    PayoutState.returned: ("ACSC", "RTRN"),
    PayoutState.cancelled: ("CANC", "CUST"),
}


class Iso20022SimConfig(BaseModel):
    """The bank's side of the secrets, and its behaviour."""

    model_config = ConfigDict(extra="forbid")

    api_keys: dict[str, str] = {"px-test": "sim-request-secret"}
    callback_secret: str = "sim-callback-secret"
    callback_url: str | None = None
    tick_seconds: float | None = Field(default=None, gt=0)
    callback_attempts: int = Field(default=3, ge=1, le=10)
    account: str = "MY-PERKESO-0001"
    batch_booking: bool = False
    # The account's booked balance before the first payout (currency -> decimal string).
    funding: dict[str, str] = {"MYR": "10000000.00"}


@dataclass
class SimTx:
    """One transaction in the bank's ledger."""

    tx: Pain001Tx
    msg_id: str
    rail_reference: str
    state: PayoutState = PayoutState.accepted
    paid_count: int = 0
    paid_on: date | None = None
    returned_on: date | None = None
    reversed_on: date | None = None
    return_code: str | None = None  # ISO 20022 return reason of a return
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def status(self) -> StatusEntry:
        code, reason = _CODES[self.state]
        return StatusEntry(self.tx.end_to_end_id, code, reason, self.rail_reference)


class Iso20022Simulator(LoopbackServed):
    """The simulated bank: ledger by EndToEndId, batches by MsgId, statements, HTTP app."""

    app: FastAPI

    def __init__(self, config: Iso20022SimConfig | None = None, faults: Faults | None = None):
        self.config = config or Iso20022SimConfig()
        self.faults = faults or Faults()
        self._lock = threading.Lock()
        self._txs: dict[str, SimTx] = {}
        self._batches: dict[str, frozenset[tuple[str, ...]]] = {}
        self._tombstones: set[str] = set()  # EndToEndIds cancelled before they arrived
        self._seq = 0
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # tests may set the day
        self.callbacks = CallbackSender(
            self.faults,
            lambda body: _hmac.callback_headers(self.config.callback_secret, body),
            attempts=self.config.callback_attempts,
            content_type=XML,
        )
        self.app = self._build_app()

    def ledger(self) -> dict[str, int]:
        """Return how many times each EndToEndId was paid (the invariant: at most 1)."""
        with self._lock:
            return {k: t.paid_count for k, t in self._txs.items()}

    def entry(self, key: str) -> LedgerEntry | None:
        """Return what the bank holds for ``key`` (None: never heard of it)."""
        with self._lock:
            t = self._txs.get(key)
            if t is None:
                return (LedgerEntry(PayoutState.cancelled, None, None, None, 0)
                        if key in self._tombstones else None)
            return LedgerEntry(t.state, t.tx.amount.amount_str(), t.tx.amount.currency,
                               t.tx.account, t.paid_count)

    def advance(self, key: str | None = None, steps: int = 1) -> int:
        """Move one transaction (or all) ``steps`` lifecycle steps; return how many changed."""
        changed = 0
        for _ in range(steps):
            with self._lock:
                targets = (
                    [self._txs[key]]
                    if key in self._txs
                    else (list(self._txs.values()) if key is None else [])
                )
                moved = [t for t in targets if self._step(t)]
                reports = [self._report(t.msg_id, [t.status()]) for t in moved]
            if self.config.callback_url:
                for body in reports:
                    self.callbacks.enqueue(self.config.callback_url, body)
            changed += len(moved)
        return changed

    def _step(self, t: SimTx) -> bool:
        step = next_state(t.state, t.tx.account)
        if step is None:
            return False
        t.state = step[0]
        t.updated_at = self.clock()
        if t.state == PayoutState.paid:
            t.paid_count += 1
            t.paid_on = business_day(t.updated_at)
        elif t.state == PayoutState.returned:
            t.returned_on = business_day(t.updated_at)
            t.return_code = _RETURN_CODES.get(step[1] or "", "MS03")
        return True

    def _report(self, msg_id: str, entries: list[StatusEntry], group: str | None = None) -> bytes:
        self._seq += 1
        return build_pain002(f"SIM2-{self._seq:08d}", msg_id, group, entries, datetime.now(UTC))

    def accept(self, data: bytes) -> tuple[int, bytes]:
        """Take a pain.001; return (HTTP status, pain.002 or error text)."""
        msg_id, txs = parse_pain001(data)
        fingerprint = frozenset(t.fingerprint() for t in txs)
        with self._lock:
            known = self._batches.get(msg_id)
            if known is not None and known != fingerprint:
                return 409, b"MsgId reused for a different batch"
            self._batches[msg_id] = fingerprint
            entries: list[StatusEntry] = []
            created: list[SimTx] = []
            for tx in txs:
                existing = self._txs.get(tx.end_to_end_id)
                if existing is None:
                    self._seq += 1
                    existing = SimTx(tx, msg_id, f"BK{self._seq:010d}")
                    if tx.end_to_end_id in self._tombstones:
                        existing.state = PayoutState.cancelled
                    self._txs[tx.end_to_end_id] = existing
                    created.append(existing)
                elif existing.tx.fingerprint() != tx.fingerprint():
                    entries.append(StatusEntry(tx.end_to_end_id, "RJCT", "AM05"))
                    continue
                entries.append(existing.status())
            ack = self._report(msg_id, entries)
            pushes = [self._report(msg_id, [t.status()]) for t in created]
        if self.config.callback_url:
            for body in pushes:
                self.callbacks.enqueue(self.config.callback_url, body)
        return 200, ack

    def cancel(self, end_to_end_id: str) -> bytes:
        """Stop a transaction not yet paid (or tombstone one never received, so it is never
        executed); return the pain.002 of its state afterwards."""
        with self._lock:
            t = self._txs.get(end_to_end_id)
            if t is None:
                self._tombstones.add(end_to_end_id)
                return self._report(f"CANC-{end_to_end_id}"[:35],
                                    [StatusEntry(end_to_end_id, "CANC", "CUST")])
            moved = t.state in (PayoutState.accepted, PayoutState.processing)
            if moved:
                t.state = PayoutState.cancelled
                t.updated_at = datetime.now(UTC)
            body = self._report(t.msg_id, [t.status()])
        if moved and self.config.callback_url:
            self.callbacks.enqueue(self.config.callback_url, body)
        return body

    def business_day(self) -> date:
        """Return the bank's booking day now (Asia/Kuala_Lumpur)."""
        return business_day(self.clock())

    def return_payout(self, key: str, code: str = "AC04", on: date | None = None) -> SimTx:
        """Make a paid payout come back (the beneficiary's bank refused it) with ISO ``code``.

        Raises:
            ValueError: the payout is not paid, or ``code`` is not four capitals.
        """
        if len(code) != 4 or not code.isalnum() or not code.isupper():
            raise ValueError(f"{code!r} is not an ISO 20022 return reason code")
        return self._come_back(key, code, on, reversal=False)

    def reverse_payout(self, key: str, on: date | None = None) -> SimTx:
        """Reverse the bank's own booking of a paid payout (a CRDT entry with RvslInd true).

        Raises:
            ValueError: the payout is not paid.
        """
        return self._come_back(key, None, on, reversal=True)

    def _come_back(self, key: str, code: str | None, on: date | None, *,
                   reversal: bool) -> SimTx:
        """Book a paid payout's money back (a return with ``code``, or a reversal) and report
        it to the callback URL."""
        with self._lock:
            t = self._txs.get(key)
            if t is None or t.state != PayoutState.paid:
                raise ValueError(f"payout {key!r} is not paid")
            t.state, t.return_code = PayoutState.returned, code
            if reversal:
                t.reversed_on = on or self.business_day()
            else:
                t.returned_on = on or self.business_day()
            t.updated_at = self.clock()
            body = self._report(t.msg_id, [t.status()])
        if self.config.callback_url:
            self.callbacks.enqueue(self.config.callback_url, body)
        return t

    def _entries(self, day: date) -> list[CamtEntry]:
        """The day's bookings from the ledger, in a stable order (rail reference)."""
        def tx(t: SimTx, reason: str | None = None) -> CamtTx:
            return CamtTx(t.tx.end_to_end_id, t.tx.amount, uetr_of(t.tx.end_to_end_id), reason)

        with self._lock:
            txs = sorted(self._txs.values(), key=lambda t: t.rail_reference)
        paid = [t for t in txs if t.paid_on == day]
        entries: list[CamtEntry] = []
        if self.config.batch_booking:
            groups: dict[tuple[str, str], list[SimTx]] = {}
            for t in paid:
                groups.setdefault((t.msg_id, t.tx.amount.currency), []).append(t)
            for (msg_id, ccy), members in groups.items():
                total = Money(sum(t.tx.amount.minor for t in members), ccy)
                entries.append(CamtEntry(total, False, day, f"BATCH-{msg_id[:20]}-{ccy}",
                                         [tx(t) for t in members], batch=True))
        else:
            entries += [CamtEntry(t.tx.amount, False, day, t.rail_reference, [tx(t)])
                        for t in paid]
        entries += [
            CamtEntry(t.tx.amount, True, day, f"R{t.rail_reference}",
                      [tx(t, t.return_code or "AC04")], bank_tx_code=("PMNT", "ICDT", "RRTN"))
            for t in txs if t.returned_on == day
        ]
        entries += [
            CamtEntry(t.tx.amount, True, day, f"V{t.rail_reference}", [tx(t)], reversal=True)
            for t in txs if t.reversed_on == day
        ]
        return entries

    def _opening(self, day: date) -> dict[str, int]:
        """The booked balance per currency at the start of ``day``, from the ledger."""
        balance = {ccy: Money.of(amount, ccy).minor for ccy, amount in self.config.funding.items()}
        with self._lock:
            for t in self._txs.values():
                ccy, minor = t.tx.amount.currency, t.tx.amount.minor
                for on, sign in ((t.paid_on, -1), (t.returned_on, 1), (t.reversed_on, 1)):
                    if on is not None and on < day:
                        balance[ccy] = balance.get(ccy, 0) + sign * minor
        return balance

    def statement(self, day: date, version: str = "08", kind: str = "camt.053") -> bytes | None:
        """Render the camt.053 (or camt.054) of ``day`` with any armed statement faults applied
        (None: ``statement_late``, not available yet).

        The same ledger and faults give the same bytes: entries are in rail-reference order,
        the creation time is the day's close and the sequence number is the day's.
        """
        path = f"/{kind.replace('.', '')}/{day}"
        if self.faults.draw(Fault.statement_late, path):
            return None
        entries = self._entries(day)
        if entries and self.faults.draw(Fault.statement_missing, path):
            entries.pop()
        if entries and self.faults.draw(Fault.statement_duplicate, path):
            entries.append(entries[0])
        if entries and self.faults.draw(Fault.statement_mismatch, path):
            first = entries[0]
            bumped = Money(first.amount.minor + 1, first.amount.currency)
            entries[0] = replace(first, amount=bumped, transactions=[
                replace(first.transactions[0], amount=bumped)])
        if entries and self.faults.draw(Fault.statement_currency_mismatch, path):
            first = entries[0]
            moved = Money(first.amount.minor, swap_currency(first.amount.currency))
            entries[0] = replace(first, amount=moved, transactions=[
                replace(t, amount=Money(t.amount.minor, moved.currency))
                for t in first.transactions])
        if self.faults.draw(Fault.statement_extra, path):
            extra = Money(100, "MYR")
            entries.append(CamtEntry(extra, False, day, "BK-EXTRA",
                                     [CamtTx("unknown-e2e-1", extra)]))
        opening = self._opening(day)
        closing = dict(opening)
        for e in entries:
            ccy = e.amount.currency
            closing[ccy] = closing.get(ccy, 0) + (e.amount.minor if e.credit else -e.amount.minor)
            opening.setdefault(ccy, 0)
        if closing and self.faults.draw(Fault.statement_unbalanced, path):
            ccy = min(closing)
            closing[ccy] += 1
        sequence = sequence_of(day) + (
            1 if self.faults.draw(Fault.statement_sequence_gap, path) else 0)
        prefix = "STMT" if kind == "camt.053" else "NTFC"
        record = CamtRecord(f"{prefix}-{day:%Y%m%d}", self.config.account, closing_time(day), day,
                            sequence, opening, closing)
        out = io.BytesIO()
        write_camt(out, record, entries, kind=kind, version=version)
        data = out.getvalue()
        if self.faults.draw(Fault.statement_truncated, path):
            return data[: len(data) * 2 // 3]  # breaks off mid-document
        return data

    def _verify(self, request: Request, body: bytes) -> Response | None:
        try:
            _hmac.verify_request(
                self.config.api_keys,
                request.headers,
                request.method,
                request.scope.get("raw_path", request.url.path.encode()).decode("ascii"),
                body,
            )
        except (AuthError, InvalidMessageError) as exc:
            return JSONResponse({"error": exc.code, "detail": exc.detail}, status_code=401)
        return None

    def _build_app(self) -> FastAPI:
        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await self.callbacks.start()
            ticker = asyncio.create_task(self._tick()) if self.config.tick_seconds else None
            try:
                yield
            finally:
                if ticker is not None:
                    ticker.cancel()
                await self.callbacks.stop()

        app = SimApp(self.faults, title="iso20022 bank simulator", lifespan=lifespan)
        add_fault_routes(app, self.faults)

        @app.post("/pain001")
        async def pain001(request: Request) -> Response:
            body = await request.body()
            if denied := self._verify(request, body):
                return denied
            try:
                status, answer = self.accept(body)
            except InvalidMessageError as exc:
                return JSONResponse({"error": exc.code, "detail": exc.detail}, status_code=422)
            if status != 200:
                return JSONResponse(
                    {"error": "msgid_reused", "detail": answer.decode()}, status_code=status
                )
            return Response(answer, media_type=XML)

        @app.get("/pain002/{end_to_end_id}")
        async def pain002(end_to_end_id: str, request: Request) -> Response:
            if denied := self._verify(request, b""):
                return denied
            with self._lock:
                t = self._txs.get(end_to_end_id)
                body = self._report(t.msg_id, [t.status()]) if t else None
            if body is None:
                return JSONResponse({"error": "not_found"}, status_code=404)
            return Response(body, media_type=XML)

        @app.post("/cancel/{end_to_end_id}")
        async def cancel(end_to_end_id: str, request: Request) -> Response:
            if denied := self._verify(request, b""):
                return denied
            return Response(self.cancel(end_to_end_id), media_type=XML)

        async def serve_statement(day: str, request: Request, version: str,
                                  kind: str) -> Response:
            if denied := self._verify(request, b""):
                return denied
            try:
                when = date.fromisoformat(day)
            except ValueError:
                return JSONResponse({"error": "bad_date"}, status_code=400)
            if version not in (("02", "08") if kind == "camt.053" else ("08",)):
                return JSONResponse({"error": "bad_version"}, status_code=400)
            body = self.statement(when, version, kind)
            if body is None:
                return JSONResponse({"error": "not_available"}, status_code=404)
            return Response(body, media_type=XML)

        @app.get("/camt053/{day}")
        async def camt053(day: str, request: Request, version: str = "08") -> Response:
            return await serve_statement(day, request, version, "camt.053")

        @app.get("/camt054/{day}")
        async def camt054(day: str, request: Request, version: str = "08") -> Response:
            return await serve_statement(day, request, version, "camt.054")

        @app.post("/_sim/return")
        async def return_payout(key: str, code: str = "AC04") -> Response:
            try:
                t = self.return_payout(key, code)
            except ValueError as exc:
                return JSONResponse({"error": "not_returnable", "detail": str(exc)},
                                    status_code=409)
            return JSONResponse({"state": t.state.value, "return_code": t.return_code})

        @app.post("/_sim/reverse")
        async def reverse_payout(key: str) -> Response:
            try:
                t = self.reverse_payout(key)
            except ValueError as exc:
                return JSONResponse({"error": "not_reversible", "detail": str(exc)},
                                    status_code=409)
            return JSONResponse({"state": t.state.value})

        @app.get("/_sim/ledger")
        async def ledger() -> Mapping[str, Any]:
            with self._lock:
                return {
                    k: {"state": t.state.value, "paid_count": t.paid_count, "msg_id": t.msg_id}
                    for k, t in self._txs.items()
                }

        @app.post("/_sim/advance")
        async def advance(key: str | None = None, steps: int = 1) -> Mapping[str, int]:
            return {"changed": self.advance(key, min(steps, 10))}

        return app

    async def _tick(self) -> None:
        assert self.config.tick_seconds is not None
        while True:
            await asyncio.sleep(self.config.tick_seconds)
            self.advance()


def create_app(config: Iso20022SimConfig | None = None, faults: Faults | None = None) -> FastAPI:
    """Build the simulator's FastAPI app (its ``Iso20022Simulator`` is ``app.state.sim``)."""
    sim = Iso20022Simulator(config, faults)
    sim.app.state.sim = sim
    return sim.app


def serve(
    host: str = "127.0.0.1",
    port: int = 8702,
    config: Iso20022SimConfig | None = None,
    faults: Faults | None = None,
) -> None:
    """Run the simulator in the foreground (standalone, for the demo)."""
    run_blocking(create_app(config, faults), host, port, None)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="ISO 20022 bank rail simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8702)
    parser.add_argument("--callback-url")
    parser.add_argument("--tick-seconds", type=float, default=1.0)
    args = parser.parse_args()
    serve(
        args.host,
        args.port,
        Iso20022SimConfig(callback_url=args.callback_url, tick_seconds=args.tick_seconds),
    )
