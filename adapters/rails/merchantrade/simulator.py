"""A Merchantrade rail simulator for tests, the demo and benchmarks (loopback only).

It speaks the wire format of this package (see its docstring) and keeps an in-memory,
thread-safe ledger keyed by idempotency key: a key is paid at most once; the same key with the
same body answers the existing payout; with a different body, 409.

Lifecycle: ``accepted`` on creation, then each ``advance`` step moves a payout one state:
``accepted -> processing -> paid`` (``_sim.lifecycle``: accounts starting ``FAIL`` fail, ``RET``
are returned after payment). Steps run every ``tick_seconds`` (if set) or on
``advance()`` / ``POST /_sim/advance``. Every state change is sent as a signed callback to
``callback_url`` (if set).

Admin API (unauthenticated, loopback): ``POST/GET/DELETE /_sim/faults``, ``GET /_sim/ledger``,
``POST /_sim/advance?key=K``, ``POST /_sim/return?key=K&code=AC04`` (a paid payout comes back
with an ISO reason: AC01, AC04, AC06, AM04, MS03) and ``POST /_sim/reverse?key=K``. In process:
``sim.faults``, ``sim.ledger()``, ``sim.advance()``, ``sim.return_payout()``,
``sim.reverse_payout()``; ``sim.clock`` (a callable returning an aware datetime) sets the day.

Settlement: ``GET /v1/settlements/{YYYY-MM-DD}.csv`` is generated from the ledger (one row per
payout event booked that day in Asia/Kuala_Lumpur: paid, failed, returned, reversed), with the
``statement_*`` faults of ``adapters.simulation`` applied; ``statement_late`` answers 404.

Usage::

    sim = MerchantradeSimulator(MerchantradeSimConfig(callback_url=...), Faults(seed=1)).start()
    ... sim.url ...
    sim.stop()

or ``python -m adapters.rails.merchantrade.simulator --port 8701`` (``serve``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.rails import _hmac
from adapters.rails._sim import CallbackSender, LedgerEntry, SimApp, add_fault_routes
from adapters.rails._sim.lifecycle import next_state
from adapters.rails._statements import business_day, sequence_of, swap_currency
from adapters.rails.merchantrade.settlement import REASON_CODES, SettlementRow, SettlementWriter
from adapters.simulation import Fault, Faults, LoopbackServed, run_blocking
from gateway.errors import AuthError, InvalidMessageError
from gateway.money import Money
from gateway.ports.rail import PayoutState

__all__ = [
    "MerchantradeSimConfig",
    "MerchantradeSimulator",
    "SimPayout",
    "create_app",
    "serve",
]


class MerchantradeSimConfig(BaseModel):
    """The simulator's side of the secrets, and its behaviour."""

    model_config = ConfigDict(extra="forbid")

    api_keys: dict[str, str] = {"px-test": "sim-request-secret"}  # key id -> HMAC secret
    callback_secret: str = "sim-callback-secret"
    callback_url: str | None = None
    tick_seconds: float | None = Field(default=None, gt=0)  # None: advance only when asked
    callback_attempts: int = Field(default=3, ge=1, le=10)
    fee: Decimal = Decimal("0.50")
    wallet: str = "MTW-PERKESO-01"  # the funding wallet named in the settlement's HEADER


class PayoutIn(BaseModel):
    """The request body the rail accepts."""

    model_config = ConfigDict(extra="forbid", strict=True)

    amount: str = Field(pattern=r"^(0|[1-9][0-9]{0,14})(\.[0-9]+)?$")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    beneficiary_name: str = Field(min_length=1, max_length=140)
    account: str = Field(min_length=1, max_length=64)
    provider: str = Field(min_length=1, max_length=64)
    reference: str = Field(min_length=1, max_length=140)


@dataclass
class SimPayout:
    """One payout in the simulator's ledger."""

    key: str
    digest: str
    request: PayoutIn
    rail_reference: str
    state: PayoutState = PayoutState.accepted
    reason: str | None = None
    paid_count: int = 0
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The days of the events a settlement reports (the rail's booking days).
    paid_on: date | None = None
    failed_on: date | None = None
    returned_on: date | None = None
    reversed_on: date | None = None

    def wire(self) -> dict[str, Any]:
        return {
            "idempotency_key": self.key,
            "rail_reference": self.rail_reference,
            "state": self.state.value,
            "reason": self.reason,
            "amount": self.request.amount,
            "currency": self.request.currency,
            "updated_at": self.updated_at.isoformat(),
        }


# The request of a tombstone: a key cancelled before any payout with it arrived.
_CANCELLED_KEY = PayoutIn.model_construct(amount="0", currency="MYR", beneficiary_name="-",
                                          account="-", provider="-", reference="-")


# ISO 20022 return reason -> the rail's own word (the reader maps the words back).
_WORDS = {code: word for word, code in REASON_CODES.items()}


def _problem(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


def _raw_path(scope: Scope) -> str:
    raw_path: bytes = scope.get("raw_path", scope["path"].encode())
    return raw_path.decode("ascii")


class MerchantradeSimulator(LoopbackServed):
    """The simulated rail: ledger, lifecycle, callbacks, settlement and its HTTP app."""

    app: FastAPI

    def __init__(self, config: MerchantradeSimConfig | None = None, faults: Faults | None = None):
        self.config = config or MerchantradeSimConfig()
        self.faults = faults or Faults()
        self._lock = threading.Lock()
        self._payouts: dict[str, SimPayout] = {}
        self._seq = 0
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # tests may set the day
        self.callbacks = CallbackSender(
            self.faults,
            lambda body: _hmac.callback_headers(self.config.callback_secret, body),
            attempts=self.config.callback_attempts,
        )
        self.app = self._build_app()

    # -- in-process control -------------------------------------------------------------------

    def ledger(self) -> dict[str, int]:
        """Return how many times each idempotency key was paid (the invariant: at most 1)."""
        with self._lock:
            return {k: p.paid_count for k, p in self._payouts.items()}

    def payout(self, key: str) -> SimPayout | None:
        """Return a copy-free view of one payout (for assertions)."""
        with self._lock:
            return self._payouts.get(key)

    def entry(self, key: str) -> LedgerEntry | None:
        """Return what the rail holds for ``key`` (None: never heard of it)."""
        with self._lock:
            p = self._payouts.get(key)
            if p is None:
                return None
            seen = p.digest != ""
            return LedgerEntry(p.state, p.request.amount if seen else None,
                               p.request.currency if seen else None,
                               p.request.account if seen else None, p.paid_count)

    def advance(self, key: str | None = None, steps: int = 1) -> int:
        """Move one payout (or all) ``steps`` lifecycle steps; return how many changed."""
        changed = 0
        for _ in range(steps):
            with self._lock:
                targets = (
                    [self._payouts[key]]
                    if key in self._payouts
                    else (list(self._payouts.values()) if key is None else [])
                )
                moved = [p for p in targets if self._step(p)]
            for p in moved:
                self._notify(p)
            changed += len(moved)
        return changed

    def _step(self, p: SimPayout) -> bool:
        step = next_state(p.state, p.request.account)
        if step is None:
            return False
        p.state, reason = step
        p.reason = reason or p.reason
        p.updated_at = self.clock()
        day = business_day(p.updated_at)
        if p.state == PayoutState.paid:
            p.paid_count += 1
            p.paid_on = day
        elif p.state == PayoutState.failed:
            p.failed_on = day
        elif p.state == PayoutState.returned:
            p.returned_on = day
        return True

    def _notify(self, p: SimPayout) -> None:
        if self.config.callback_url:
            with self._lock:
                doc = {"event": "payout.status", "payout": p.wire()}
            self.callbacks.enqueue(self.config.callback_url, json.dumps(doc).encode())

    # -- returns, reversals and settlement ---------------------------------------------------

    def business_day(self) -> date:
        """Return the rail's booking day now (Asia/Kuala_Lumpur)."""
        return business_day(self.clock())

    def return_payout(self, key: str, code: str = "AC04", on: date | None = None) -> SimPayout:
        """Make a paid payout come back (the wallet refused it) with an ISO reason code.

        Raises:
            ValueError: the payout is not paid, or ``code`` is not one the rail has a word for.
        """
        word = _WORDS.get(code)
        if word is None:
            raise ValueError(f"no Merchantrade reason for {code!r} (one of {', '.join(_WORDS)})")
        with self._lock:
            p = self._payouts.get(key)
            if p is None or p.state != PayoutState.paid:
                raise ValueError(f"payout {key!r} is not paid")
            p.state, p.reason, p.returned_on = PayoutState.returned, word, on or self.business_day()
            p.updated_at = self.clock()
        self._notify(p)
        return p

    def reverse_payout(self, key: str, on: date | None = None) -> SimPayout:
        """Reverse the rail's own booking of a paid payout (the money comes back).

        Raises:
            ValueError: the payout is not paid.
        """
        with self._lock:
            p = self._payouts.get(key)
            if p is None or p.state != PayoutState.paid:
                raise ValueError(f"payout {key!r} is not paid")
            p.state, p.reason = PayoutState.returned, "reversed"
            p.reversed_on = on or self.business_day()
            p.updated_at = self.clock()
        self._notify(p)
        return p

    def _rows(self, day: date) -> list[SettlementRow]:
        rows: list[tuple[tuple[str, int], SettlementRow]] = []
        with self._lock:
            for p in self._payouts.values():
                events = (
                    (p.paid_on, "PAID", "", True),
                    (p.failed_on, "FAILED", p.reason or "", False),
                    (p.returned_on, "RETURNED", p.reason or "", False),
                    (p.reversed_on, "REVERSED", "", False),
                )
                for n, (on, status, reason, charged) in enumerate(events):
                    if on != day:
                        continue
                    ccy = p.request.currency
                    charge = Money.of(self.config.fee, ccy).amount_str() if charged else "0.00"
                    # By payout reference: concurrent submits number rail references in any
                    # order, and the same ledger must give the same file.
                    rows.append(((p.key, n), (
                        day.isoformat(), p.key, p.rail_reference, p.request.amount, ccy, status,
                        charge, reason if reason in REASON_CODES else "")))
        return [row for _, row in sorted(rows)]

    def settlement(self, day: date) -> bytes | None:
        """Render the settlement CSV of ``day`` with any armed statement faults applied (None:
        ``statement_late``, not available yet).

        The same ledger and faults give the same bytes: rows are in payout-reference order and
        nothing in the file depends on the clock.
        """
        path = f"/v1/settlements/{day}.csv"
        if self.faults.draw(Fault.statement_late, path):
            return None
        rows = self._rows(day)
        if rows and self.faults.draw(Fault.statement_missing, path):
            rows.pop()
        if rows and self.faults.draw(Fault.statement_duplicate, path):
            rows.append(rows[0])
        if rows and self.faults.draw(Fault.statement_mismatch, path):
            first = rows[0]
            bumped = Money.parse(first[3], first[4])
            rows[0] = (*first[:3], Money(bumped.minor + 1, bumped.currency).amount_str(),
                       *first[4:])
        if rows and self.faults.draw(Fault.statement_currency_mismatch, path):
            first = rows[0]
            rows[0] = (*first[:4], swap_currency(first[4]), *first[5:])
        if self.faults.draw(Fault.statement_extra, path):
            fee = Money.of(self.config.fee, "MYR").amount_str()
            rows.append((day.isoformat(), "unknown-payout-1", "MT-EXTRA", "1.00", "MYR", "PAID",
                         fee, ""))
        sequence = sequence_of(day) + (1 if self.faults.draw(Fault.statement_sequence_gap, path)
                                       else 0)
        out = io.BytesIO()
        writer = SettlementWriter(out, day, self.config.wallet, sequence)
        for row in rows:
            writer.write(row)
        if self.faults.draw(Fault.statement_truncated, path):
            return out.getvalue()  # cut off before the trailer
        amounts = None
        if writer.amounts and self.faults.draw(Fault.statement_unbalanced, path):
            ccy = min(writer.amounts)
            amounts = {**writer.amounts, ccy: writer.amounts[ccy] + 1}
        writer.close(amounts=amounts)
        return out.getvalue()

    # -- HTTP ------------------------------------------------------------------------------------

    def _verify(self, request: Request, body: bytes) -> JSONResponse | None:
        denied = self._denied(request.headers, request.method, _raw_path(request.scope), body)
        return None if denied is None else _problem(denied[0], **denied[1])

    def _denied(self, headers: Mapping[str, str], method: str, path: str,
                body: bytes) -> tuple[int, dict[str, str]] | None:
        try:
            _hmac.verify_request(self.config.api_keys, headers, method, path, body)
        except (AuthError, InvalidMessageError) as exc:
            return 401, {"error": exc.code, "detail": exc.detail}
        return None

    def create_from_wire(self, headers: Mapping[str, str], path: str,
                         body: bytes) -> tuple[int, dict[str, Any]]:
        """``POST /v1/payouts``: verify, validate, create or find; return status and JSON doc.

        ``headers`` must have lower-case names (as ASGI gives them)."""
        if denied := self._denied(headers, "POST", path, body):
            return denied
        key = headers.get("idempotency-key", "")
        if not key or len(key) > 128:
            return 400, {"error": "idempotency_key_required",
                         "detail": "Idempotency-Key: 1..128 chars"}
        try:
            payout = PayoutIn.model_validate_json(body)
            Money.parse(payout.amount, payout.currency)
        except (ValidationError, ValueError) as exc:
            return 422, {"error": "invalid_payout", "detail": str(exc).splitlines()[0]}
        status, p = self._create(key, payout)
        if status == 409:
            return 409, {"error": "idempotency_key_reused", "detail": "same key, different payout"}
        with self._lock:
            return status, p.wire()

    def _fast_path(self, app: ASGIApp) -> ASGIApp:
        """Answer ``POST /v1/payouts`` in plain ASGI (inside the fault middleware); pass on the
        rest to FastAPI."""

        async def fast(scope: Scope, receive: Receive, send: Send) -> None:
            if not (scope["type"] == "http" and scope["method"] == "POST"
                    and scope["path"] == "/v1/payouts"):
                await app(scope, receive, send)
                return
            chunks: list[bytes] = []
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            headers: dict[str, str] = {}
            for name, value in scope["headers"]:  # the first of repeated headers, as Starlette
                headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
            status, doc = self.create_from_wire(headers, _raw_path(scope), b"".join(chunks))
            payload = orjson.dumps(doc)
            await send({"type": "http.response.start", "status": status, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})

        return fast

    def cancel(self, key: str) -> SimPayout:
        """Stop a payout not yet paid; tombstone a key never received (a late submit with it
        is answered ``cancelled``); a paid, failed or returned payout keeps its state."""
        with self._lock:
            p = self._payouts.get(key)
            if p is None:
                self._seq += 1
                p = SimPayout(key, "", _CANCELLED_KEY, rail_reference=f"MT{self._seq:010d}",
                              state=PayoutState.cancelled, reason="cancelled_by_sender")
                self._payouts[key] = p
                return p
            if p.state not in (PayoutState.accepted, PayoutState.processing):
                return p
            p.state, p.reason = PayoutState.cancelled, "cancelled_by_sender"
            p.updated_at = datetime.now(UTC)
        self._notify(p)
        return p

    def _create(self, key: str, payout: PayoutIn) -> tuple[int, SimPayout]:
        digest = hashlib.sha256(
            json.dumps(payout.model_dump(), sort_keys=True).encode()
        ).hexdigest()
        with self._lock:
            existing = self._payouts.get(key)
            if existing is not None:
                # A key cancelled before it arrived answers cancelled, whatever the body.
                same = existing.digest in (digest, "")
                return (200 if same else 409), existing
            self._seq += 1
            created = SimPayout(key, digest, payout, rail_reference=f"MT{self._seq:010d}")
            self._payouts[key] = created
        self._notify(created)
        return 201, created

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

        app = SimApp(self.faults, fast_path=self._fast_path, title="merchantrade simulator",
                     lifespan=lifespan)
        add_fault_routes(app, self.faults)

        # POST /v1/payouts is answered by ``_fast_path`` (plain ASGI, no FastAPI routing).

        @app.get("/v1/payouts/{key}")
        async def get_payout(key: str, request: Request) -> Response:
            if denied := self._verify(request, b""):
                return denied
            with self._lock:
                p = self._payouts.get(key)
                doc = p.wire() if p else None
            if doc is None:
                return _problem(404, "not_found", "no payout with this key")
            return JSONResponse(doc)

        @app.post("/v1/payouts/{key}/cancel")
        async def cancel_payout(key: str, request: Request) -> Response:
            if denied := self._verify(request, b""):
                return denied
            p = self.cancel(key)
            with self._lock:
                doc = p.wire()
            return JSONResponse(doc)

        @app.get("/v1/settlements/{day}.csv")
        async def get_settlement(day: str, request: Request) -> Response:
            if denied := self._verify(request, b""):
                return denied
            try:
                when = date.fromisoformat(day)
            except ValueError:
                return _problem(400, "bad_date", "YYYY-MM-DD")
            body = self.settlement(when)
            if body is None:
                return _problem(404, "not_available", f"the settlement of {day} is not ready")
            return Response(body, media_type="text/csv")

        @app.get("/_sim/ledger")
        async def ledger() -> Mapping[str, Any]:
            with self._lock:
                return {
                    k: {**p.wire(), "paid_count": p.paid_count} for k, p in self._payouts.items()
                }

        @app.post("/_sim/advance")
        async def advance(key: str | None = None, steps: int = 1) -> Mapping[str, int]:
            return {"changed": self.advance(key, min(steps, 10))}

        @app.post("/_sim/return")
        async def return_payout(key: str, code: str = "AC04") -> Response:
            try:
                p = self.return_payout(key, code)
            except ValueError as exc:
                return _problem(409, "not_returnable", str(exc))
            with self._lock:
                return JSONResponse(p.wire())

        @app.post("/_sim/reverse")
        async def reverse_payout(key: str) -> Response:
            try:
                p = self.reverse_payout(key)
            except ValueError as exc:
                return _problem(409, "not_reversible", str(exc))
            with self._lock:
                return JSONResponse(p.wire())

        return app

    async def _tick(self) -> None:
        assert self.config.tick_seconds is not None
        while True:
            await asyncio.sleep(self.config.tick_seconds)
            self.advance()


def create_app(
    config: MerchantradeSimConfig | None = None, faults: Faults | None = None
) -> FastAPI:
    """Build the simulator's FastAPI app (its ``MerchantradeSimulator`` is ``app.state.sim``)."""
    sim = MerchantradeSimulator(config, faults)
    sim.app.state.sim = sim
    return sim.app


def serve(
    host: str = "127.0.0.1",
    port: int = 8701,
    config: MerchantradeSimConfig | None = None,
    faults: Faults | None = None,
) -> None:
    """Run the simulator in the foreground (standalone, for the demo)."""
    run_blocking(create_app(config, faults), host, port, None)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8701)
    parser.add_argument("--callback-url")
    parser.add_argument("--tick-seconds", type=float, default=1.0)
    args = parser.parse_args()
    serve(
        args.host,
        args.port,
        MerchantradeSimConfig(callback_url=args.callback_url, tick_seconds=args.tick_seconds),
    )
