"""What each maker-checker proposal does: the explicit table of actions (name -> handler).

Each handler freezes a proposal's target set and builds the preview an approver sees
(``prepare``), and carries out an approved proposal (``execute``) in the approver's unit of
work. Money is touched only through ``PaymentService``, outbox rows only through
``gateway.outbox.records``. A new action (resolving a reconciliation case, retiring a key)
is one handler class and one line in ``ACTIONS``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.admin.proposals import Proposal
from gateway.clock import Clock, utcnow
from gateway.errors import (
    ConflictError,
    EvidenceMismatchError,
    InvalidMessageError,
    NotFoundError,
    StaleTargetError,
)
from gateway.messages import partner_keys as pkeys
from gateway.messages.partner_keys import PartnerKeys
from gateway.messages.suspensions import Suspensions, all_suspensions, lift
from gateway.outbox import records
from gateway.payments import repository as repo
from gateway.payments.domain import Cause, IllegalTransition, PaymentState, transition
from gateway.payments.service import PaymentService, check_reference, discrepancy_view
from gateway.reconciliation import repository as recon
from gateway.reconciliation.calendar import KL
from gateway.reconciliation.domain import CASE_KINDS, ItemKind
from gateway.reconciliation.reasons import Action
from gateway.reconciliation.service import case_view

__all__ = ["ACTIONS", "RECON_OUTCOMES", "ActionContext", "Prepared", "ProposalAction",
           "sanitise_error"]

PREVIEW_ROWS = 20
MAX_TARGETS = 500
_DIGITS = re.compile(r"\d{8,}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]+")

log = logging.getLogger(__name__)


def sanitise_error(text: str | None) -> str | None:
    """A stored error as operators may see it: one line, no long digit runs (accounts and
    national ids may be quoted by a counterparty's refusal), at most 300 characters."""
    if text is None:
        return None
    text = _CONTROL.sub(" ", text)
    text = _DIGITS.sub(lambda m: "#" * len(m.group()), text)
    return text[:300]


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What handlers may use: the payment service, the hub's suspension and key caches."""

    payments: PaymentService
    suspensions: Suspensions
    partners: frozenset[str]
    keys: PartnerKeys | None = None
    # How long a successor key must have been active before its predecessor may be retired.
    key_overlap: timedelta = timedelta(hours=24)
    clock: Clock = utcnow


@dataclass(frozen=True, slots=True)
class Prepared:
    targets: list[str]
    preview: dict[str, Any]


class ProposalAction(Protocol):
    async def prepare(self, conn: AsyncConnection, cx: ActionContext,
                      params: Mapping[str, Any]) -> Prepared:
        """Freeze the targets and describe what approving will do.

        Raises:
            NotFoundError, ConflictError, InvalidMessageError: nothing sensible to propose.
        """
        ...

    async def execute(self, conn: AsyncConnection, cx: ActionContext, p: Proposal,
                      now: datetime) -> dict[str, Any]:
        """Carry out an approved proposal on its frozen targets; return what it did."""
        ...


def _task_preview(r: Any) -> dict[str, Any]:
    return {"id": r.pk, "kind": r.kind, "destination": r.destination, "ref": r.ref,
            "ordering_key": r.ordering_key, "attempts": r.attempts,
            "last_error": sanitise_error(r.last_error), "blocking": r.blocking}


def _why(p: Proposal) -> str:
    return f"proposal {p.pk} by {p.maker}, approved by {p.decided_by}: {p.reason}"


class Replay:
    """Make dead letters pending again (``task_ids``, or every dead letter of a kind and/or
    destination at the time of the proposal)."""

    async def prepare(self, conn: AsyncConnection, cx: ActionContext,
                      params: Mapping[str, Any]) -> Prepared:
        ids = params.get("task_ids")
        if ids:
            rows = await records.dead_by_pks(conn, ids)
            missing = sorted(set(ids) - {r.pk for r in rows})
            if missing:
                raise NotFoundError("not_found", f"no dead letter {missing[0]}"
                                    + (f" (and {len(missing) - 1} more)" if len(missing) > 1
                                       else ""))
        else:
            rows = await records.dead_page(conn, kind=params.get("kind"),
                                           destination=params.get("destination"),
                                           limit=MAX_TARGETS + 1)
            if len(rows) > MAX_TARGETS:
                raise InvalidMessageError("schema_violation", f"more than {MAX_TARGETS} dead "
                                          "letters match; narrow the filter")
            if not rows:
                raise NotFoundError("not_found", "no dead letter matches")
            rows.sort(key=lambda r: r.pk)
        return Prepared([str(r.pk) for r in rows],
                        {"tasks": [_task_preview(r) for r in rows[:PREVIEW_ROWS]],
                         "effect": "each task becomes due now with a fresh age budget; work "
                                   "it held back runs after it"})

    async def execute(self, conn: AsyncConnection, cx: ActionContext, p: Proposal,
                      now: datetime) -> dict[str, Any]:
        revived: list[int] = []
        gone: list[int] = []
        for pk in p.targets:
            row = await records.revive_dead(conn, int(pk), now)
            (revived if row is not None else gone).append(int(pk))
        return {"replayed": revived, "no_longer_dead": gone}


class Skip:
    """Finish one dead letter without doing it, so the later work of its case runs."""

    async def prepare(self, conn: AsyncConnection, cx: ActionContext,
                      params: Mapping[str, Any]) -> Prepared:
        pk = int(params["task_id"])
        rows = await records.dead_by_pks(conn, [pk])
        if not rows:
            raise NotFoundError("not_found", f"no dead letter {pk}")
        r = rows[0]
        effects = [f"{r.kind} {r.ref} to {r.destination} is never done"]
        if r.kind == "payout":
            payment = (await repo.by_ids(conn, [r.ref])).get(r.ref)
            if payment is not None:
                effects.append(f"payment {r.ref} stays {payment.state}: the rail is not asked "
                               "about it again by this task")
        if r.ordering_key is not None:
            effects.append(f"{r.blocking} later task(s) of case {r.ordering_key} it holds back "
                           "run next, in order")
        return Prepared([str(pk)], {"task": _task_preview(r), "consequences": effects})

    async def execute(self, conn: AsyncConnection, cx: ActionContext, p: Proposal,
                      now: datetime) -> dict[str, Any]:
        row = await records.skip_dead(conn, int(p.targets[0]), now, f"skipped: {_why(p)}")
        if row is None:
            raise ConflictError("state_conflict", f"task {p.targets[0]} is no longer dead")
        return {"skipped": int(p.targets[0])}


class ResumePartner:
    """Lift an operator's suspension of a partner."""

    async def prepare(self, conn: AsyncConnection, cx: ActionContext,
                      params: Mapping[str, Any]) -> Prepared:
        pid = str(params["partner_id"])
        if pid not in cx.partners:
            raise NotFoundError("not_found", f"no partner {pid}")
        found = (await all_suspensions(conn)).get(pid)
        if found is None:
            raise ConflictError("state_conflict", f"partner {pid} is not suspended by an "
                                "operator")
        return Prepared([pid], {"partner_id": pid, "suspended_by": found.suspended_by,
                                "suspended_at": found.suspended_at.isoformat(),
                                "suspension_reason": found.reason,
                                "effect": "its requests are accepted again and its held "
                                          "deliveries go out"})

    async def execute(self, conn: AsyncConnection, cx: ActionContext, p: Proposal,
                      now: datetime) -> dict[str, Any]:
        if not await lift(conn, p.targets[0]):
            raise ConflictError("state_conflict", f"partner {p.targets[0]} is not suspended")
        cx.suspensions.forget()
        return {"resumed": p.targets[0]}


def _outcome_check(payment: Any, outcome: str, rail_reference: str | None) -> str:
    state = payment.state
    if outcome == "reask":
        return f"the rail is asked again about it (now {state})"
    try:
        tr = transition(PaymentState(state), PaymentState(outcome), Cause.ops_resolved)
    except IllegalTransition as exc:
        raise ConflictError("state_conflict", str(exc)) from None
    if tr is not None:
        return f"{state} -> {outcome}"
    check_reference(payment.payment_id, state, payment.rail_reference, rail_reference)
    if rail_reference and not payment.rail_reference:
        return f"stays {state}; its rail reference is recorded: {rail_reference}"
    return f"stays {state}"


class ResolveDiscrepancy:
    """Settle a discrepancy: mark its payment paid or failed with the rail's reference, or
    ask the rail again."""

    async def prepare(self, conn: AsyncConnection, cx: ActionContext,
                      params: Mapping[str, Any]) -> Prepared:
        d = await repo.discrepancy_by_pk(conn, int(params["discrepancy_id"]))
        if d is None:
            raise NotFoundError("not_found", f"no discrepancy {params['discrepancy_id']}")
        if d.state != "open":
            raise ConflictError("state_conflict", f"discrepancy {d.pk} is {d.state}")
        payment = (await repo.by_ids(conn, [d.payment_id]))[d.payment_id]
        effect = _outcome_check(payment, params["outcome"], params.get("rail_reference"))
        return Prepared([str(d.pk)], {"discrepancy": discrepancy_view(d),
                                      "payment_state": payment.state, "effect": effect})

    async def execute(self, conn: AsyncConnection, cx: ActionContext, p: Proposal,
                      now: datetime) -> dict[str, Any]:
        d = await repo.discrepancy_by_pk(conn, int(p.targets[0]))
        assert d is not None
        row = await cx.payments.resolve(
            conn, d.payment_id, p.params["outcome"], rail_reference=p.params.get(
                "rail_reference"), detail=_why(p), now=now, discrepancy_pk=d.pk)
        return {"payment_id": d.payment_id, "state": row.state}


# A payment whose outcome ops may settle: the hub does not know yet what the rail did.
_UNSETTLED = frozenset({"sending", "unknown", "submitted", "cancel_requested"})


class ResolvePayment:
    """Settle a payment whose outcome is unknown: paid or failed with the rail's reference,
    or ask the rail again."""

    async def prepare(self, conn: AsyncConnection, cx: ActionContext,
                      params: Mapping[str, Any]) -> Prepared:
        pid = str(params["payment_id"])
        row = (await repo.by_ids(conn, [pid])).get(pid)
        if row is None:
            raise NotFoundError("not_found", f"no payment {pid}")
        if row.state not in _UNSETTLED:
            # A known outcome is changed only by the rail's word (a discrepancy), not by ops.
            raise ConflictError("state_conflict", f"payment {pid} is {row.state}; its "
                                "outcome is known (a contradiction is a discrepancy)")
        return Prepared([pid], {"payment_id": pid, "state": row.state,
                                "effect": _outcome_check(row, params["outcome"],
                                                         params.get("rail_reference"))})

    async def execute(self, conn: AsyncConnection, cx: ActionContext, p: Proposal,
                      now: datetime) -> dict[str, Any]:
        row = await cx.payments.resolve(conn, p.targets[0], p.params["outcome"],
                                        rail_reference=p.params.get("rail_reference"),
                                        detail=_why(p), now=now)
        return {"payment_id": p.targets[0], "state": row.state}


_STOPPABLE = {"instructed": "cancelled at once (it never left the hub)",
              "sending": "cancel requested: the rail is asked to cancel it",
              "unknown": "cancel requested: the rail is asked to cancel it",
              "submitted": "cancel requested: the rail is asked to cancel it",
              "cancel_requested": "already asked: nothing more"}


class CancelPayments:
    """Stop payments that may be at the rail (``PaymentService.stop``)."""

    async def prepare(self, conn: AsyncConnection, cx: ActionContext,
                      params: Mapping[str, Any]) -> Prepared:
        ids = list(dict.fromkeys(params["payment_ids"]))
        rows = await repo.by_ids(conn, ids)
        missing = [i for i in ids if i not in rows]
        if missing:
            raise NotFoundError("not_found", f"no payment {missing[0]}")
        final = [i for i in ids if rows[i].state not in _STOPPABLE]
        if final:
            raise ConflictError("state_conflict", f"payment {final[0]} is "
                                f"{rows[final[0]].state}; its outcome is known")
        return Prepared(ids, {"payments": [{"payment_id": i, "state": rows[i].state,
                                            "effect": _STOPPABLE[rows[i].state]}
                                           for i in ids[:PREVIEW_ROWS]]})

    async def execute(self, conn: AsyncConnection, cx: ActionContext, p: Proposal,
                      now: datetime) -> dict[str, Any]:
        done: dict[str, str] = {}
        for pid in p.targets:
            try:
                row = await cx.payments.stop(conn, pid, Cause.cancelled, _why(p), now)
                done[pid] = row.state
            except ConflictError as exc:  # its outcome became known meanwhile
                done[pid] = f"not stopped: {exc.detail}"
            except EvidenceMismatchError as exc:
                # Held (its payout does not leave); the others of the proposal are stopped.
                log.error("ALERT cancel proposal %s: payment %s held: %s", p.pk, pid, exc)
                done[pid] = f"not stopped: evidence_mismatch: {exc}"
        return {"payments": done}


_K = ItemKind
# The cases whose question is the payment's outcome at the rail: ops may settle it with the
# rail's word or ask the rail again (the same path as ``resolve_payment``).
_OUTCOME_KINDS = frozenset({_K.missing_on_statement, _K.state_mismatch})

# A reconciliation case's resolution -> the case kinds it fits.
RECON_OUTCOMES: dict[str, frozenset[ItemKind]] = {
    # a note says why: a fee booked late, a funding top-up, a corrected statement received...
    "explained": CASE_KINDS,
    # the difference is accepted as a loss (or a gain) after review
    "written_off": CASE_KINDS - {_K.quarantined},
    "paid": _OUTCOME_KINDS,
    "failed": _OUTCOME_KINDS,
    "reask": _OUTCOME_KINDS,
    # a return for a wrong, closed or blocked account: never resend to the same account
    "new_beneficiary_details": frozenset({_K.returned, _K.reversed}),
}
_NEEDS_NOTE = frozenset({"explained", "written_off"})


def _recon_effect(row: Any, outcome: str, payment: Any, rail_reference: str | None) -> str:
    """What approving does to the case (and its payment), or why the outcome does not fit.

    Raises:
        InvalidMessageError: schema_violation, the outcome does not fit the case.
        ConflictError: state_conflict, the payment's state does not allow it.
    """
    kind = ItemKind(row.kind)
    if kind not in RECON_OUTCOMES[outcome]:
        fits = sorted(o for o, kinds in RECON_OUTCOMES.items() if kind in kinds)
        raise InvalidMessageError("schema_violation", f"outcome {outcome!r} does not fit a "
                                  f"{kind.value} case (one of {', '.join(fits)})")
    if outcome == "new_beneficiary_details" and row.action != Action.new_beneficiary_details:
        raise InvalidMessageError("schema_violation", f"case {row.pk}'s reason code "
                                  f"{row.reason_code or '(none)'} is not a bad-account code; "
                                  "new beneficiary details do not fit it")
    if outcome in ("paid", "failed", "reask"):
        if row.payment_id is None or payment is None:
            raise ConflictError("state_conflict", f"case {row.pk} has no payment to settle")
        return f"case closed; payment {row.payment_id}: " + _outcome_check(payment, outcome,
                                                                          rail_reference)
    if outcome == "new_beneficiary_details":
        _return_applied(row, payment)
        return "case closed: the partner is asked for new beneficiary details"
    return f"case closed as {outcome.replace('_', ' ')}"


def _return_applied(row: Any, payment: Any) -> None:
    """New details are asked for a payout the ledger says came back: a return an unproven
    statement showed was not applied (the payment is still paid, no partner was told), and
    asking for new details then could pay the beneficiary twice.

    Raises:
        ConflictError: state_conflict, the payment is not ``returned``.
    """
    state = payment.state if payment is not None else None
    if state != "returned":
        raise ConflictError("state_conflict", f"case {row.pk}: payment {row.payment_id} is "
                            f"{state or 'unknown'}, not returned: the return was not applied "
                            "(its statement did not prove itself); reconcile the corrected "
                            "statement first")


class ResolveReconCase:
    """Close an open reconciliation case with an outcome that fits its kind; settle its
    payment through ``PaymentService`` where the outcome says so."""

    async def prepare(self, conn: AsyncConnection, cx: ActionContext,
                      params: Mapping[str, Any]) -> Prepared:
        pk = int(params["case_id"])
        row = await recon.case_by_pk(conn, pk)
        if row is None:
            raise NotFoundError("not_found", f"no reconciliation case {pk}")
        if row.state != "open":
            raise ConflictError("state_conflict", f"reconciliation case {pk} is {row.state}")
        outcome = str(params["outcome"])
        if outcome in _NEEDS_NOTE and not str(params.get("note") or "").strip():
            raise InvalidMessageError("schema_violation", f"note: {outcome} needs a note "
                                      "saying why")
        payment = ((await repo.by_ids(conn, [row.payment_id])).get(row.payment_id)
                   if row.payment_id else None)
        state = payment.state if payment is not None else None
        effect = _recon_effect(row, outcome, payment, params.get("rail_reference"))
        view = case_view(row, cx.clock().astimezone(KL).date())
        return Prepared([str(pk)], {
            "case": {k: view[k] for k in ("id", "rail", "kind", "subject", "amount",
                                          "reason_code", "action", "priority", "opened_at",
                                          "age_days", "due_on", "overdue")},
            "payment": ({"payment_id": row.payment_id, "state": state}
                        if row.payment_id else None),
            "outcome": outcome, "effect": effect})

    async def execute(self, conn: AsyncConnection, cx: ActionContext, p: Proposal,
                      now: datetime) -> dict[str, Any]:
        pk = int(p.targets[0])
        row = await recon.case_by_pk(conn, pk, lock=True)
        if row is None or row.state != "open":
            # A run cleared it, or another proposal resolved it: this one no longer applies.
            how = (f"closed by {row.resolved_by} (proposal {row.proposal_pk})"
                   if row is not None and row.resolved_by else "closed by a run")
            raise StaleTargetError("state_conflict", f"reconciliation case {pk} is already "
                                   f"{how}; nothing to resolve")
        outcome = str(p.params["outcome"])
        result: dict[str, Any] = {"case_id": pk, "outcome": outcome}
        if outcome == "new_beneficiary_details" and row.payment_id is not None:
            _return_applied(row, (await repo.by_ids(conn, [row.payment_id],
                                                    lock=True)).get(row.payment_id))
        if outcome in ("paid", "failed", "reask"):
            assert row.payment_id is not None  # checked at prepare; a case keeps its subject
            payment = await cx.payments.resolve(
                conn, row.payment_id, outcome, rail_reference=p.params.get("rail_reference"),
                detail=f"reconciliation case {pk}: {_why(p)}", now=now)
            result |= {"payment_id": row.payment_id, "state": payment.state}
        note = p.params.get("note") or p.reason
        assert p.pk is not None  # a stored proposal
        closed = await recon.resolve_case(
            conn, pk, resolution=outcome, by=p.maker, proposal_pk=p.pk, now=now,
            note=f"{outcome}: {note} (approved by {p.decided_by})")
        assert closed  # the row lock (PostgreSQL) or the single writer (SQLite) holds it open
        return result
class RetireKey:
    """Retire a partner's key after the overlap: new messages and tokens signed with it are
    refused; the records it signed still verify."""

    async def prepare(self, conn: AsyncConnection, cx: ActionContext,
                      params: Mapping[str, Any]) -> Prepared:
        pid, kid = str(params["partner_id"]), str(params["kid"])
        if pid not in cx.partners:
            raise NotFoundError("not_found", f"no partner {pid}")
        if cx.keys is not None:
            await pkeys.seed(conn, cx.keys.file_ring, cx.clock())
        keys = await pkeys.keys_of(conn, pid)
        if all(k.kid != kid for k in keys):
            raise NotFoundError("not_found", f"partner {pid} has no key {kid!r}")
        suspended = pid in await all_suspensions(conn)
        blocker = pkeys.retire_blocker(keys, kid, cx.clock(), cx.key_overlap,
                                       suspended=suspended)
        if blocker is not None:
            raise ConflictError("state_conflict", blocker)
        ttl = cx.keys.ttl if cx.keys is not None else 0
        return Prepared([kid], {
            "partner_id": pid, "kid": kid, "partner_suspended": suspended,
            "keys": [{"kid": k.kid, "state": k.state,
                      "activated_at": k.activated_at.isoformat() if k.activated_at else None}
                     for k in keys],
            "effect": f"messages and tokens signed with {kid} are refused (401 key_retired) "
                      f"by every gateway process within {ttl:g} s; records it signed still "
                      "verify"})

    async def execute(self, conn: AsyncConnection, cx: ActionContext, p: Proposal,
                      now: datetime) -> dict[str, Any]:
        pid = str(p.params["partner_id"])
        who = f"{p.maker}, approved by {p.decided_by}"[:200]
        done = await pkeys.retire(conn, pid, p.targets[0], by=who, now=now,
                                  overlap=cx.key_overlap,
                                  suspended=pid in await all_suspensions(conn))
        if cx.keys is not None:
            cx.keys.forget()
        return {"retired": done.kid, "partner_id": pid}


# Proposal action name -> its handler. Plain literal, read when a proposal is made or approved.
ACTIONS: dict[str, ProposalAction] = {
    "replay": Replay(),
    "skip": Skip(),
    "resume_partner": ResumePartner(),
    "resolve_discrepancy": ResolveDiscrepancy(),
    "resolve_payment": ResolvePayment(),
    "cancel_payments": CancelPayments(),
    "resolve_recon_case": ResolveReconCase(),
    "retire_key": RetireKey(),
}
