"""Reconciliation test helpers: a scripted rail whose statement is a file of prepared items,
payments written straight into the ledger in a chosen state, and a runner of the CLI with the
scripted rail in its rail table.

The scripted statement format is JSON Lines, one seam item per line (``{"t": "record" |
"line" | "bad" | "proof", ...}``), so a test states exactly what ``scan_statement`` yields;
the bytes are still stored, hashed and chained like any rail's statement.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any, BinaryIO

import httpx
from pydantic import BaseModel, ConfigDict
from sqlalchemy import insert, select

from gateway.errors import InvalidMessageError, TransientDeliveryError
from gateway.money import Money
from gateway.payments import repository as payments_repo
from gateway.ports.rail import (
    BadLine,
    LineKind,
    StatementItem,
    StatementLine,
    StatementProof,
    StatementRecord,
)
from gateway.storage.tables import payment_events, payments
from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["ScriptedConfig", "ScriptedRail", "add_payment", "bad", "line", "proof", "record",
           "statement", "states"]

MAGIC = {"t": "scripted-statement"}


def record(account: str = "ACC-1", sequence: int | None = None, sid: str = "S1",
           day: str = "2026-12-01") -> dict[str, Any]:
    return {"t": "record", "statement_id": sid, "account": account, "sequence": sequence,
            "business_date": day}


def line(n: int, amount: str = "100.00", currency: str = "MYR", *, e2e: str | None = None,
         kind: str = "payout", credit: bool = False, reason: str | None = None,
         ref: str | None = None, uetr: str | None = None, batch: str | None = None,
         day: str = "2026-12-01", sid: str = "S1") -> dict[str, Any]:
    return {"t": "line", "statement_id": sid, "line_no": n, "amount": amount,
            "currency": currency, "credit": credit, "booked_on": day, "value_on": day,
            "end_to_end_id": e2e, "rail_reference": ref, "uetr": uetr, "kind": kind,
            "return_reason": reason, "batch_ref": batch}


def bad(n: int, reason: str = "amount: not a number", sid: str = "S1") -> dict[str, Any]:
    return {"t": "bad", "statement_id": sid, "line_no": n, "reason": reason, "text": "x;y"}


def proof(ok: bool = True, check: str = "balance", sid: str = "S1") -> dict[str, Any]:
    return {"t": "proof", "statement_id": sid, "check": check, "ok": ok,
            "detail": "opening + entries = closing" if ok else "opening + entries != closing"}


def statement(items: Sequence[dict[str, Any]]) -> bytes:
    """The bytes of a scripted statement."""
    return b"".join(json.dumps(i, sort_keys=True).encode() + b"\n" for i in [MAGIC, *items])


def _item(d: dict[str, Any]) -> StatementItem:
    t = d["t"]
    if t == "record":
        return StatementRecord(d["statement_id"], "scripted", d["account"],
                               date.fromisoformat(d["business_date"]), d["sequence"])
    if t == "bad":
        return BadLine(d["statement_id"], d["line_no"], d["reason"], d["text"])
    if t == "proof":
        return StatementProof(d["statement_id"], d["check"], d["ok"], d["detail"])
    return StatementLine(
        d["statement_id"], d["line_no"], Money.parse(d["amount"], d["currency"]),
        credit=d["credit"], booked_on=date.fromisoformat(d["booked_on"]),
        value_on=date.fromisoformat(d["value_on"]), end_to_end_id=d["end_to_end_id"],
        rail_reference=d["rail_reference"], uetr=d["uetr"], kind=LineKind(d["kind"]),
        return_reason=d["return_reason"], batch_ref=d["batch_ref"])


class ScriptedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    statements_dir: str | None = None  # fetch_statement serves <dir>/<date>.jsonl


class ScriptedRail:
    """A rail at the seam whose statements are scripted item lists (tests only)."""

    name = "scripted"

    def __init__(self, config: ScriptedConfig | None = None) -> None:
        self.config = config or ScriptedConfig()
        self.served: dict[date, bytes] = {}
        self.refusals: dict[date, Exception] = {}  # what asking for a day's statement raises

    async def fetch_statement(self, client: httpx.AsyncClient, day: date) -> bytes:
        if day in self.refusals:
            raise self.refusals[day]
        if day in self.served:
            return self.served[day]
        if self.config.statements_dir:
            from pathlib import Path
            path = Path(self.config.statements_dir) / f"{day.isoformat()}.jsonl"
            if path.exists():
                return path.read_bytes()
        raise TransientDeliveryError(f"scripted statement {day}: not available yet")

    def scan_statement(self, source: BinaryIO) -> Iterator[StatementItem]:
        head = source.readline()
        try:
            ok = json.loads(head) == MAGIC
        except ValueError:
            ok = False
        if not ok:
            raise InvalidMessageError("unknown_type", "not a scripted statement")
        return self._rest(source)

    def _rest(self, source: BinaryIO) -> Iterator[StatementItem]:
        for raw in source:
            if raw.strip():
                yield _item(json.loads(raw))

    def parse_statement(self, data: bytes) -> list[StatementLine]:
        import io
        return [i for i in self.scan_statement(io.BytesIO(data)) if isinstance(i, StatementLine)]

    # The payout calls are never made in reconciliation tests.
    async def submit(self, *a: Any) -> Any:
        raise NotImplementedError

    submit_each = status = cancel = submit

    def parse_callback(self, *a: Any) -> Any:
        raise NotImplementedError


def states(rail: str = "fake") -> Any:
    return select(payments.c.payment_id, payments.c.state).where(payments.c.rail == rail)


async def add_payment(uow: UnitOfWorkFactory, payment_id: str, *, state: str = "paid",
                      amount: str = "100.00", currency: str = "MYR", rail: str = "fake",
                      paid_at: datetime | None = datetime(2026, 12, 1, 2, 0, tzinfo=UTC),
                      rail_reference: str | None = None, partner_id: str | None = None,
                      claim_ref: str | None = None, before_0016: bool = False) -> int:
    """Write a payment straight into the ledger in ``state`` (test set-up only);
    ``before_0016``: into a database not yet upgraded to 0016, as it was written then."""
    m = Money.parse(amount, currency)
    now = paid_at or datetime(2026, 12, 1, tzinfo=UTC)
    async with uow() as u:
        pk = (await u.conn.execute(insert(payments).values(
            payment_id=payment_id, idempotency_key=payment_id, request_sha256="0" * 64,
            state=state, rail=rail, partner_id=partner_id, benefit="EI_TEMPORARY_DISABLEMENT",
            claim_ref=claim_ref, beneficiary_name="Siti Aminah", provider="MTWALLET",
            account="60123456789", account_name="Siti Aminah", amount_minor=m.minor,
            currency=m.currency, base_minor=m.minor, base_currency=m.currency,
            rail_reference=rail_reference, created_at=now, updated_at=now,
            paid_at=paid_at if state in ("paid", "reconciled", "returned") else None,
        ).returning(payments.c.pk))).scalar_one()
        event = dict(payment_pk=pk, from_state=None, to_state=state, cause="instructed", at=now)
        if before_0016:  # an event as recorded before migration 0016: no payment_sha256
            await u.conn.execute(insert(payment_events).values(event))
        else:
            await payments_repo.insert_events(u.conn, [event])
        await u.commit()
    return int(pk)
