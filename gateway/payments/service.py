"""Payment services: instruct, transition (with its cause), stop, and announce a payment.

Services work inside the caller's unit of work and never commit. Every state change goes
through ``apply``: it checks the state machine, writes the new state and its event in the same
transaction, opens a discrepancy when the change is a rail report contradicting the record
(``domain.contradiction``), and, when a payment becomes ``paid``, queues the
``payment.notice`` and the ``claim.status`` ``paid`` to the beneficiary's partner through the
outbox (same transaction: the notice exists if and only if the payment is recorded as paid).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.admin.masking import mask_account
from gateway.errors import ConflictError, InvalidMessageError, NotFoundError
from gateway.evidence import payments as evidence
from gateway.money import MINOR_UNITS, Money
from gateway.outbox.records import drop_pending, enqueue, expedite
from gateway.payments import instruction
from gateway.payments import repository as repo
from gateway.payments.accounts import RailPractice
from gateway.payments.domain import (
    FINAL,
    Cause,
    IllegalTransition,
    PaymentState,
    Transition,
    contradiction,
    transition,
)
from gateway.payments.fx import convert
from gateway.payments.requests import PaymentIn, PayoutAccount, canonical_sha256
from gateway.ports.processing import OutboundSender
from gateway.storage.tables import metadata, payments

__all__ = [
    "EVIDENCED", "PAYOUT_KIND", "Change", "PaymentService", "check_reference",
    "discrepancy_view", "payment_view", "with_changes",
]

log = logging.getLogger(__name__)

PAYOUT_KIND = "payout"
# Deterministic ids for the messages a payment causes: a second attempt to announce the same
# payment collides on (sender, message_id) instead of sending twice.
_NOTICE_NS = uuid.UUID("6f0c8f3e-4a51-4f0e-9a57-3c1b8d2e7a10")


_NO_PRACTICE = RailPractice()

# A stop can still reach these: nothing final is known yet.
_STOPPABLE = frozenset({PaymentState.instructed, PaymentState.sending, PaymentState.unknown,
                        PaymentState.submitted})


@dataclass(frozen=True, slots=True)
class Change:
    """A transition of one payment, with what the rail told us about it."""

    row: RowMapping
    transition: Transition
    rail_reference: str | None = None
    reason: str | None = None
    at: datetime | None = None  # the rail's time of the change, if it said
    values: Mapping[str, Any] = field(default_factory=dict)  # other columns it sets


def check_reference(payment_id: str, state: str, stored: str | None,
                    given: str | None) -> None:
    """Refuse a rail reference that contradicts the one a payment already has, where ops'
    outcome leaves its state as it is: the rail booked the payout under its reference, and
    another one would make the ledger say it paid something else (a missing one is recorded).

    Raises:
        ConflictError: state_conflict, ``given`` is not ``stored``.
    """
    if given and stored and given != stored:
        raise ConflictError("state_conflict", f"payment {payment_id} is {state} with rail "
                            f"reference {stored}; {given} contradicts it")


class Paid(Protocol):
    """What ``reconcile_many`` reads of a payment it moves (a row, or a run's own tuple)."""

    @property
    def pk(self) -> int: ...
    @property
    def payment_id(self) -> str: ...
    @property
    def state(self) -> str: ...


class PaymentService:
    def __init__(self, rails: Collection[str], outbound: OutboundSender | None,
                 max_amount: Mapping[str, Money] | None = None,
                 practices: Mapping[str, RailPractice] | None = None) -> None:
        self.rails = rails  # configured rail names (live view of the hub's registry)
        self.outbound = outbound
        self.max_amount = max_amount or {}  # per currency; a currency not named is unbounded
        # Per rail, live view of the rails file's practice keys; a rail not named has none.
        self.practices = practices if practices is not None else {}

    # -- instruct ----------------------------------------------------------------------------

    async def instruct(self, conn: AsyncConnection, req: PaymentIn, now: datetime, *,
                       period: str | None = None) -> tuple[RowMapping, bool]:
        """Record a payment and queue its payout; idempotent by ``payment_id``.

        Returns:
            The payment row and whether it was created now (False: an identical instruction).

        Raises:
            ConflictError: payment_conflict, the id is taken by a different instruction.
            InvalidMessageError: schema_violation (unknown rail, bad conversion).
        """
        digest = canonical_sha256(req)
        existing = (await repo.by_ids(conn, [req.payment_id])).get(req.payment_id)
        if existing is not None:
            if existing.request_sha256 != digest:
                raise ConflictError("payment_conflict", f"payment {req.payment_id} was already "
                                    "instructed with different content")
            return existing, False
        if req.rail not in self.rails:
            raise InvalidMessageError("schema_violation", f"rail: {req.rail!r} is not configured "
                                      f"(one of {', '.join(sorted(self.rails)) or 'none'})")
        base = req.amount.value()
        self.check_ceiling(base, "amount")
        converted = req.fx is not None and req.fx.currency != "MYR"
        self.check_payout(req.rail, req.payout, None if converted else base, "amount")
        paid, fx = base, None
        if req.fx is not None and req.fx.currency != "MYR":
            try:
                fx = convert(base, req.fx.currency, req.fx.rate_decimal(), req.fx.source,
                             req.fx.at, digits=self.practice(req.rail).digits(req.fx.currency))
            except (ValueError, ArithmeticError) as exc:
                # decimal.InvalidOperation and Overflow are ArithmeticErrors: never a 500.
                raise InvalidMessageError("amount_invalid", f"fx: {exc}") from None
            paid = fx.paid
            if paid.minor <= 0:
                raise InvalidMessageError("amount_invalid", "fx: converted amount is zero")
            self.check_ceiling(paid, "fx: converted amount")
        values: dict[str, Any] = dict(
            payment_id=req.payment_id, idempotency_key=idempotency_key(req.payment_id),
            request_sha256=digest, state=PaymentState.instructed.value, rail=req.rail,
            partner_id=req.partner_id, benefit=req.benefit.value, claim_ref=req.claim_ref,
            socso_claim_no=req.socso_claim_no, pension_ref=req.pension_ref, period=period,
            beneficiary_name=req.beneficiary.name, beneficiary_id=req.beneficiary.id_text(),
            provider=req.payout.provider, account=req.payout.account,
            account_name=req.payout.account_name, amount_minor=paid.minor,
            currency=paid.currency, base_minor=base.minor, base_currency=base.currency,
            created_at=now, updated_at=now,
        )
        if fx is not None:
            values.update(fx_rate=str(fx.rate), fx_source=fx.source, fx_at=fx.at,
                          fx_exact=str(fx.exact), fx_rounding_minor=fx.rounding_minor)
        pk = (await conn.execute(insert(payments).values(**values).returning(payments.c.pk))
              ).scalar_one()
        detail = f"{paid} via {req.rail}" + (f" ({base} at {fx.rate}, {fx.source})" if fx else "")
        await repo.insert_events(conn, [dict(payment_pk=pk, from_state=None,
                                              to_state=PaymentState.instructed.value,
                                              cause=Cause.instructed.value, detail=detail,
                                              at=now)])
        await enqueue(conn, kind=PAYOUT_KIND, destination=req.rail, ref=req.payment_id, now=now)
        row = (await repo.by_ids(conn, [req.payment_id]))[req.payment_id]
        log.info("payment %s instructed: %s via %s", req.payment_id, paid, req.rail)
        return row, True

    def practice(self, rail: str) -> RailPractice:
        """The rail's practice (accounts, decimals); a rail without one accepts any account."""
        return self.practices.get(rail) or _NO_PRACTICE

    def check_account(self, rail: str, account: str) -> None:
        """Refuse an account ``rail`` cannot pay.

        Raises:
            InvalidMessageError: schema_violation naming ``payout.account``.
        """
        try:
            self.practice(rail).check_account(account)
        except ValueError as exc:
            raise InvalidMessageError("schema_violation", f"payout.account: {exc}") from None

    def check_payout(self, rail: str, payout: PayoutAccount, amount: Money | None,
                     what: str) -> None:
        """Refuse a payout its rail cannot make: the account, or ``amount`` paid as it is.

        Raises:
            InvalidMessageError: schema_violation (the account), amount_invalid (decimals the
                rail does not pay: converting is the back office's decision, not ours).
        """
        self.check_account(rail, payout.account)
        if amount is None:
            return
        digits = self.practice(rail).digits(amount.currency)
        if amount.minor % 10 ** (MINOR_UNITS[amount.currency] - digits):
            raise InvalidMessageError("amount_invalid", f"{what}: {amount} has decimals rail "
                                      f"{rail} does not pay ({digits} decimals; whole units "
                                      "if 0)")

    def check_ceiling(self, amount: Money, what: str) -> None:
        """Refuse one payout above its currency's configured ceiling.

        Raises:
            InvalidMessageError: amount_over_ceiling.
        """
        ceiling = self.max_amount.get(amount.currency)
        if ceiling is not None and amount.minor > ceiling.minor:
            raise InvalidMessageError("amount_over_ceiling", f"{what}: {amount} is above the "
                                      f"ceiling of {ceiling} for one payout")

    # -- transitions -------------------------------------------------------------------------

    async def apply(self, conn: AsyncConnection, changes: Sequence[Change], now: datetime) -> None:
        """Write transitions (already checked by the state machine) and their events.

        Raises:
            EvidenceMismatchError: one of the payments was changed beside the hub; nothing is
                written (the caller's transaction must not commit).
        """
        if not changes:
            return
        await evidence.require_unchanged(conn, [ch.row.pk for ch in changes])
        updates, events, paid, returned = [], [], [], []
        for ch in changes:
            tr, row = ch.transition, ch.row
            assert tr.from_state is not None and row.state == tr.from_state.value, (
                f"payment {row.payment_id} is {row.state}, not {tr.from_state}")
            new = dict(row)
            new.update(ch.values, state=tr.to_state.value, updated_at=now)
            if ch.rail_reference:
                new["rail_reference"] = ch.rail_reference
            if ch.reason or tr.to_state in (PaymentState.failed, PaymentState.returned,
                                            PaymentState.cancelled):
                new["reason"] = ch.reason or tr.detail
            if tr.to_state == PaymentState.paid:
                new["paid_at"] = ch.at or now
                paid.append(new)
            elif tr.to_state == PaymentState.returned and tr.from_state in (
                    PaymentState.paid, PaymentState.reconciled):
                returned.append(new)  # the partner was told paid: tell it the money came back
            updates.append(new)
            events.append(dict(payment_pk=row.pk, from_state=tr.from_state.value,
                               to_state=tr.to_state.value, cause=tr.cause.value,
                               detail=with_changes(tr.detail, row, new), at=now))
        await repo.update_many(conn, updates)
        await repo.insert_events(conn, events)
        for ch in changes:
            await self._open_discrepancy(conn, ch, now)
        for new in paid:
            await self._announce(conn, new, now)
        for new in returned:
            await self._announce(conn, new, now, returned=True)

    async def reconcile_many(self, conn: AsyncConnection,
                             rows: Sequence[Paid], detail: str,
                             now: datetime, *, checked: bool = False) -> None:
        """Move ``paid`` payments to ``reconciled`` (cause ``reconciled``) with their events:
        the batched equivalent of ``apply`` for the one transition a reconciliation run makes
        by the thousand (one UPDATE, guarded unless ``checked``, and its events per batch).
        Nothing is announced: the partner was told when the payment was paid.

        ``checked``: this transaction read ``rows`` locked (FOR NO KEY UPDATE, the lock an
        UPDATE takes) and found each as its newest event recorded, so none can have been
        changed beside the hub since and the UPDATE does not compare them again (the
        comparison costs as much as the move).

        Raises:
            EvidenceMismatchError: one of them was changed beside the hub (not moved).
            ConflictError: state_conflict, one of them is no longer ``paid`` (changed since it
                was read): nothing of the caller's transaction may be committed.
        """
        if not rows:
            return
        tr = transition(PaymentState.paid, PaymentState.reconciled, Cause.reconciled)
        assert tr is not None, "paid -> reconciled is not a transition"
        for row in rows:
            assert row.state == PaymentState.paid.value, (
                f"payment {row.payment_id} is {row.state}, not paid")
        moved = await repo.move_with_events(
            conn, [r.pk for r in rows], PaymentState.paid.value, PaymentState.reconciled.value,
            Cause.reconciled.value, detail, now, checked=checked)
        if moved != len(rows):
            await evidence.require_unchanged(conn, [r.pk for r in rows])
            raise ConflictError("state_conflict", f"{len(rows) - moved} payment(s) changed "
                                "while being reconciled; run the reconciliation again")

    async def note(self, conn: AsyncConnection, row: RowMapping, cause: Cause, detail: str,
                   now: datetime, **values: Any) -> None:
        """Record an event that is not a state change (and optional column changes).

        Raises:
            EvidenceMismatchError: the payment was changed beside the hub.
        """
        await evidence.require_unchanged(conn, [row.pk])
        if values:
            new = dict(row)
            new.update(values, updated_at=now)
            await repo.update_many(conn, [new])
            detail = with_changes(detail, row, new) or detail
        await repo.insert_events(conn, [dict(payment_pk=row.pk, from_state=row.state,
                                              to_state=row.state, cause=cause.value,
                                              detail=detail, at=now)])

    async def stop(self, conn: AsyncConnection, payment_id: str, cause: Cause, detail: str,
                   now: datetime) -> RowMapping:
        """Stop a payment: cancel it if it was never attempted, else ask its rail to.

        An ``instructed`` payment never left the hub (``sending`` is committed before any rail
        call) and is ``cancelled`` at once. One that may be at the rail becomes
        ``cancel_requested``: its payout task is made due now and calls the rail's cancel, and
        the rail's answer (cancelled, or paid after all) decides the final state.

        Raises:
            NotFoundError: no such payment.
            ConflictError: state_conflict, its outcome is already known (paid, failed...).
        """
        row = (await repo.by_ids(conn, [payment_id], lock=True)).get(payment_id)
        if row is None:
            raise NotFoundError("not_found", f"no payment {payment_id}")
        state = PaymentState(row.state)
        if state == PaymentState.cancel_requested:
            return row
        if state not in _STOPPABLE:
            raise ConflictError("state_conflict", f"payment {payment_id} is {row.state}; its "
                                "outcome is known and it can no longer be stopped")
        target = (PaymentState.cancelled if state == PaymentState.instructed
                  else PaymentState.cancel_requested)
        tr = transition(state, target, cause, detail)
        assert tr is not None
        await self.apply(conn, [Change(row, tr)], now)
        if target == PaymentState.cancel_requested:
            await expedite(conn, kind=PAYOUT_KIND, ref=payment_id, now=now)
        return (await repo.by_ids(conn, [payment_id]))[payment_id]

    async def resolve(self, conn: AsyncConnection, payment_id: str, outcome: str, *,
                      rail_reference: str | None, detail: str, now: datetime,
                      discrepancy_pk: int | None = None) -> RowMapping:
        """Settle a payment's outcome as ops learnt it from the rail (an approved proposal).

        ``paid`` or ``failed`` moves the payment there (cause ``ops_resolved``, with the rail's
        reference) and resolves its open discrepancies (or only ``discrepancy_pk``);
        ``reask`` makes its payout task ask the rail again now (a new task if none waits),
        and leaves any discrepancy open until the answer is in.

        Raises:
            NotFoundError: no such payment.
            ConflictError: state_conflict, the state machine does not allow the outcome.
        """
        row = (await repo.by_ids(conn, [payment_id], lock=True)).get(payment_id)
        if row is None:
            raise NotFoundError("not_found", f"no payment {payment_id}")
        if outcome == "reask":
            if not await expedite(conn, kind=PAYOUT_KIND, ref=payment_id, now=now):
                await enqueue(conn, kind=PAYOUT_KIND, destination=row.rail, ref=payment_id,
                              now=now)
            await self.note(conn, row, Cause.ops_resolved, f"re-ask the rail: {detail}", now)
            return (await repo.by_ids(conn, [payment_id]))[payment_id]
        target = PaymentState(outcome)
        if target not in (PaymentState.paid, PaymentState.failed):
            raise ConflictError("state_conflict", f"{outcome} is not an outcome ops can set")
        try:
            tr = transition(PaymentState(row.state), target, Cause.ops_resolved, detail)
        except IllegalTransition as exc:
            raise ConflictError("state_conflict", f"payment {payment_id}: {exc}") from None
        if tr is None:
            check_reference(payment_id, row.state, row.rail_reference, rail_reference)
        if tr is not None:
            await self.apply(conn, [Change(row, tr, rail_reference=rail_reference,
                                           reason=detail if target == PaymentState.failed
                                           else None)], now)
            if target in FINAL:
                # Its outcome is final: nothing is left for its payout task to ask (a paid
                # payment's task stays: it watches for a return).
                await drop_pending(conn, kind=PAYOUT_KIND, ref=payment_id, now=now,
                                   reason=f"outcome settled by ops: {outcome}")
        elif rail_reference:
            await self.note(conn, row, Cause.ops_resolved, detail, now,
                            rail_reference=rail_reference)
        await repo.resolve_discrepancies(conn, row.pk, detail=f"ops: {outcome}: {detail}",
                                         now=now, only_pk=discrepancy_pk)
        return (await repo.by_ids(conn, [payment_id]))[payment_id]

    async def mark_sending(self, conn: AsyncConnection, rows: Sequence[RowMapping],
                           now: datetime) -> None:
        """Record the submission fact of never-attempted payments (locked, ``instructed``):
        their exact instruction is stored and they become ``sending``, before any rail call."""
        changes = []
        for row in rows:
            tr = transition(PaymentState.instructed, PaymentState.sending, Cause.submit_attempt,
                            f"first submit to {row.rail}")
            assert tr is not None
            sent = instruction.encode(instruction.build(row))
            changes.append(Change(row, tr, values={"instruction": sent}))
        await self.apply(conn, changes, now)

    async def _open_discrepancy(self, conn: AsyncConnection, ch: Change, now: datetime) -> None:
        found = contradiction(ch.transition)
        if found is None:
            return
        tr, row = ch.transition, ch.row
        assert tr.from_state is not None
        new = await repo.open_discrepancy(conn, dict(
            payment_pk=row.pk, payment_id=row.payment_id, kind=found.kind,
            recorded_state=tr.from_state.value, rail_state=tr.to_state.value,
            overpayment=found.overpayment, state="open", detail=tr.detail, opened_at=now))
        if new:
            log.warning("payment %s: discrepancy %s opened (overpayment=%s)", row.payment_id,
                        found.kind, found.overpayment)

    # -- announcing --------------------------------------------------------------------------

    async def _announce(self, conn: AsyncConnection, p: dict[str, Any], now: datetime, *,
                        returned: bool = False) -> None:
        """Queue the ``payment.notice`` and ``claim.status`` of a payment paid (or returned
        after it was announced paid) to its partner, with deterministic message ids."""
        partner = p["partner_id"]
        if not partner or self.outbound is None or self.outbound.registry.get(partner) is None:
            return
        correlation = p["claim_ref"] or p["pension_ref"]
        ref = {"claim_ref": p["claim_ref"]} if p["claim_ref"] else {"pension_ref": p["pension_ref"]}
        amount = Money(p["amount_minor"], p["currency"])
        payload = {
            "payment_id": p["payment_id"], **ref, "benefit": p["benefit"],
            "amount": amount.wire(),
            "paid_via": {"rail": p["rail"], "reference": p["rail_reference"] or p["payment_id"]},
            "paid_at": _iso(p["paid_at"] or now),
        }
        event = "payment.notice"
        if returned:
            payload.update(status="returned", reason=p["reason"] or "returned by the rail")
            event = "payment.notice.returned"
        await self.outbound.send(
            conn, partner_id=partner, type_="payment.notice", payload=payload, now=now,
            correlation_id=correlation,
            message_id=str(uuid.uuid5(_NOTICE_NS, f"{event}:{p['payment_id']}")))
        if p["claim_ref"]:
            claim_no = p["socso_claim_no"] or await _socso_claim_no(conn, partner, p["claim_ref"])
            if claim_no is None:
                log.warning("payment %s: no socso_claim_no for claim; claim.status not sent",
                            p["payment_id"])
                return
            # claim.status has no "returned": the claim is payable again, and the reason says why.
            status = {"status": "approved", "reason": f"payment {p['payment_id']} was returned "
                      f"by the rail: {payload['reason']}"} if returned else {"status": "paid"}
            which = "returned" if returned else "paid"
            await self.outbound.send(
                conn, partner_id=partner, type_="claim.status", now=now,
                payload={"claim_ref": p["claim_ref"], "socso_claim_no": claim_no, **status},
                correlation_id=correlation,
                message_id=str(uuid.uuid5(_NOTICE_NS,
                                          f"claim.status.{which}:{p['payment_id']}")))


# The mutable columns that say where the money goes and how the rail knows the payout. The
# evidence chain's digest of a payment covers only what never changes (gateway.evidence.chain),
# so a change of one of these is provable only through the chained event that records it:
# apply and note, the two writers of a payment's columns, name each change there, old and new.
# The account is named as the admin API's masked views show it (its last four characters):
# event details are shown to every back-office and admin reader, and the full new account is
# in the signed message the event names (a beneficiary.update, itself chained).
EVIDENCED = ("provider", "account", "account_name", "rail_reference")


def with_changes(detail: str | None, old: Mapping[Any, Any],
                 new: Mapping[Any, Any]) -> str | None:
    """``detail`` followed by every change of an ``EVIDENCED`` column from ``old`` to ``new``
    (``account: ********6789 -> ********1234``)."""
    changes = []
    for column in EVIDENCED:
        if column not in old or column not in new:  # a schedule has no rail reference
            continue
        was, now = old[column], new[column]
        if was == now:
            continue
        if column == "account":
            was, now = mask_account(was), mask_account(now)
        changes.append(f"{column}: {was or '(none)'} -> {now or '(none)'}")
    if not changes:
        return detail
    return "; ".join([detail, *changes] if detail else changes)


def idempotency_key(payment_id: str) -> str:
    """The rail's idempotency key: the payment id itself (never an attempt number)."""
    return payment_id


async def _socso_claim_no(conn: AsyncConnection, partner: str, claim_ref: str) -> str | None:
    # The claims table belongs to claim intake (issue 3); look it up only if it exists.
    claims = metadata.tables.get("claims")
    if claims is None or not {"partner_id", "claim_ref", "socso_claim_no"} <= set(claims.c.keys()):
        return None
    q = select(claims.c.socso_claim_no).where(claims.c.partner_id == partner,
                                              claims.c.claim_ref == claim_ref)
    value = (await conn.execute(q)).scalar()
    return str(value) if value else None


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def payment_view(row: RowMapping, events: Sequence[RowMapping] | None = None) -> dict[str, Any]:
    """The back office's JSON view of a payment."""
    view: dict[str, Any] = {
        "payment_id": row.payment_id, "state": row.state, "rail": row.rail,
        "idempotency_key": row.idempotency_key, "partner_id": row.partner_id,
        "benefit": row.benefit, "claim_ref": row.claim_ref, "pension_ref": row.pension_ref,
        "period": row.period, "beneficiary": {"name": row.beneficiary_name},
        "amount": Money(row.amount_minor, row.currency).wire(),
        "base_amount": Money(row.base_minor, row.base_currency).wire(),
        "rail_reference": row.rail_reference, "reason": row.reason,
        "confirmed": row.confirmed,
        "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at),
        "paid_at": _iso(row.paid_at) if row.paid_at else None,
    }
    if row.fx_rate:
        view["fx"] = {"rate": row.fx_rate, "source": row.fx_source,
                      "at": _iso(row.fx_at) if row.fx_at else None, "exact": row.fx_exact,
                      "rounding_minor": row.fx_rounding_minor}
    if events is not None:
        view["events"] = [{"from": e.from_state, "to": e.to_state, "cause": e.cause,
                           "detail": e.detail, "at": _iso(e.at)} for e in events]
    return view


def discrepancy_view(row: RowMapping) -> dict[str, Any]:
    """The back office's JSON view of a discrepancy."""
    return {
        "id": row.pk, "payment_id": row.payment_id, "kind": row.kind,
        "recorded_state": row.recorded_state, "rail_state": row.rail_state,
        "overpayment": bool(row.overpayment), "state": row.state, "detail": row.detail,
        "opened_at": _iso(row.opened_at),
        "resolved_at": _iso(row.resolved_at) if row.resolved_at else None,
    }
