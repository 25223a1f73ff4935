"""The admin API's use cases: each opens its unit of work; an act writes its audit record in
the same unit of work, so the act and its record commit together or not at all.

Reads leave their record through the router (``gateway.admin.api``) after the answer is
built. Who may do what is the table ``PERMISSIONS``; what a proposal does is
``gateway.admin.actions.ACTIONS``.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping

from gateway.admin import queries as q
from gateway.admin.actions import ACTIONS, ActionContext, sanitise_error
from gateway.admin.audit import AuditContext, audit_view, write_record
from gateway.admin.auth import ROLES
from gateway.admin.masking import UNMASK_ROLES, mask_account, mask_national_id, may_unmask
from gateway.admin.proposals import (
    Proposal,
    approve,
    edit,
    executed,
    execution_failed,
    expire,
    new_proposal,
    reject,
    submit,
)
from gateway.clock import Clock
from gateway.errors import (
    EvidenceMismatchError,
    ForbiddenError,
    NotFoundError,
    ProblemError,
    StaleTargetError,
)
from gateway.evidence.chain import verify_chain
from gateway.messages import partner_keys as pkeys
from gateway.messages.partner_keys import PartnerKeys, StoredKey
from gateway.messages.suspensions import Suspensions, all_suspensions, suspend
from gateway.outbox import records
from gateway.outbox.overrides import all_overrides, set_override
from gateway.payments import repository as repo
from gateway.payments.service import PaymentService, discrepancy_view, payment_view
from gateway.protocol.partners import PartnerRegistry
from gateway.protocol.signing import KeyRing
from gateway.reconciliation import repository as recon
from gateway.reconciliation.calendar import KL
from gateway.reconciliation.service import case_view, item_view, run_view
from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["PERMISSIONS", "AdminService", "Page", "require"]

log = logging.getLogger(__name__)

Page = dict[str, Any]

# Permission -> the roles that hold it. Approving is the approver's alone (four eyes: the
# people who act are not the people who approve), the audit trail the auditor's.
PERMISSIONS: dict[str, frozenset[str]] = {
    "read": frozenset(ROLES),
    "unmask": UNMASK_ROLES,
    "operate": frozenset({"operator"}),
    "approve": frozenset({"approver"}),
    "audit": frozenset({"auditor"}),
    # Partner and hub keys: who the hub trusts (retiring one is still a four-eyes proposal).
    "keys": frozenset({"admin"}),
}


def require(ctx: AuditContext, permission: str) -> None:
    """Raises: ForbiddenError: forbidden, the caller's roles lack ``permission``."""
    assert ctx.identity is not None
    allowed = PERMISSIONS[permission]
    if not ctx.identity.roles & allowed:
        raise ForbiddenError("forbidden", f"{permission} needs one of the roles "
                             f"{', '.join(sorted(allowed))}")


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode("ascii") if data is not None else None


def _next(rows: list[Any], limit: int, pk: str = "pk") -> str | None:
    return str(getattr(rows[-1], pk)) if len(rows) == limit else None


def task_view(r: Any) -> dict[str, Any]:
    return {"id": r.pk, "kind": r.kind, "destination": r.destination, "ref": r.ref,
            "ordering_key": r.ordering_key, "state": r.state, "attempts": r.attempts,
            "last_error": sanitise_error(r.last_error), "created_at": _iso(r.created_at),
            "updated_at": _iso(r.updated_at), "next_attempt_at": _iso(r.next_attempt_at)}


def proposal_view(p: Proposal, now: datetime) -> dict[str, Any]:
    p = expire(p, now)
    return {"id": p.pk, "action": p.action, "state": p.state.value, "maker": p.maker,
            "editors": list(p.editors), "reason": p.reason, "params": p.params,
            "target_count": p.target_count, "targets": list(p.targets),
            "preview": p.preview, "created_at": _iso(p.created_at),
            "expires_at": _iso(p.expires_at), "decided_by": p.decided_by,
            "decided_at": _iso(p.decided_at), "decision_note": p.decision_note,
            "result": p.result}


class AdminService:
    """Ops reads and acts behind /admin/v1."""

    def __init__(self, uow: UnitOfWorkFactory, registry: PartnerRegistry,
                 payments: PaymentService, rails: Collection[str], suspensions: Suspensions,
                 clock: Clock, proposal_ttl: timedelta,
                 verify_keys: Callable[[], KeyRing] | None = None, *,
                 keys: PartnerKeys | None = None,
                 key_overlap: timedelta = timedelta(hours=24)) -> None:
        self.uow = uow
        # The keys ``evidence/verify?signatures=true`` checks with (the hub's and partners').
        self.verify_keys = verify_keys
        self.keys = keys
        self.key_overlap = key_overlap
        self.registry = registry
        self.payments = payments
        self.rails = rails
        self.suspensions = suspensions
        self.clock = clock
        self.proposal_ttl = proposal_ttl

    def _cx(self) -> ActionContext:
        return ActionContext(self.payments, self.suspensions,
                             frozenset(p.id for p in self.registry), self.keys,
                             self.key_overlap, self.clock)

    @staticmethod
    def _unmask(ctx: AuditContext, unmasked: bool) -> bool:
        if unmasked:
            if ctx.identity is None or not may_unmask(ctx.identity.roles):
                raise ForbiddenError("forbidden", "unmasked personal data needs one of the "
                                     f"roles {', '.join(sorted(UNMASK_ROLES))}")
            ctx.unmasked = True
        return unmasked

    # -- messages --------------------------------------------------------------------------------

    async def messages(self, ctx: AuditContext, f: q.MessageFilter, *, cursor: str | None,
                       limit: int) -> Page:
        before = q.before_cursor(cursor)
        async with self.uow(read_only=True) as uow:
            rows = await q.messages_page(uow.conn, f, before=before, limit=limit)
        return {"messages": [_message_summary(r) for r in rows], "next": _next(rows, limit)}

    async def message(self, ctx: AuditContext, pk: int, *, unmasked: bool) -> dict[str, Any]:
        show = self._unmask(ctx, unmasked)
        ctx.target(f"message:{pk}")
        async with self.uow(read_only=True) as uow:
            row = await q.message_by_pk(uow.conn, pk)
            if row is None:
                raise NotFoundError("not_found", f"no message {pk}")
            receipts = await q.receipts_of(uow.conn, pk)
            deliveries = await records.tasks_of(uow.conn, kind="deliver", ref=str(pk))
            processing = await records.tasks_of(uow.conn, kind="process_inbound", ref=str(pk))
        view = _message_summary(row)
        view.update({
            "masked": not show,
            "wire_b64": _b64(row.wire) if show else None,
            "canonical_b64": _b64(row.canonical) if show else None,
            "wire_media_type": row.wire_media_type, "body_sha256": row.body_sha256,
            "signature": row.signature, "kid": row.kid,
            "receipt_b64": _b64(row.receipt), "receipt_signature": row.receipt_signature,
            "delivery": {"attempts": [task_view(t) for t in deliveries],
                         "receipts": [{"received_at": _iso(r.received_at),
                                       "body_b64": _b64(r.body), "signature": r.signature,
                                       "kid": r.kid} for r in receipts]},
            "processing": {"tasks": [task_view(t) for t in processing]},
        })
        return view

    # -- outbox ----------------------------------------------------------------------------------

    async def outbox_depth(self, ctx: AuditContext) -> dict[str, Any]:
        now = self.clock()
        async with self.uow(read_only=True) as uow:
            rows = await records.depth(uow.conn)
        return {"queues": [{"destination": r.destination, "kind": r.kind, "waiting": r.waiting,
                            "retrying": r.retrying, "dead": r.dead,
                            "oldest_age_seconds": (round((now - r.oldest).total_seconds(), 3)
                                                   if r.oldest is not None else None)}
                           for r in rows], "at": now.isoformat()}

    async def dead_letters(self, ctx: AuditContext, *, kind: str | None,
                           destination: str | None, cursor: str | None, limit: int) -> Page:
        before = q.before_cursor(cursor)
        async with self.uow(read_only=True) as uow:
            rows = await records.dead_page(uow.conn, kind=kind, destination=destination,
                                           before=before, limit=limit)
        return {"dead_letters": [task_view(r) | {"blocking": r.blocking} for r in rows],
                "next": _next(rows, limit)}

    def _destinations(self) -> list[str]:
        return sorted({p.id for p in self.registry} | set(self.rails))

    async def breakers(self, ctx: AuditContext) -> dict[str, Any]:
        async with self.uow(read_only=True) as uow:
            overrides = await all_overrides(uow.conn)
            suspended = await all_suspensions(uow.conn)
            stats = await q.partner_stats(uow.conn)
        out = []
        for dest in sorted(set(self._destinations()) | set(overrides)):
            o = overrides.get(dest)
            held = (o is not None and o.state == "open") or dest in suspended
            out.append({"destination": dest, "manual": o.state if o else None,
                        "held": held, "suspended": dest in suspended,
                        "set_by": o.set_by if o else None, "reason": o.reason if o else None,
                        "set_at": _iso(o.set_at) if o else None,
                        "failing": stats.get(dest, {}).get("failing", 0)})
        return {"breakers": out}

    async def set_breaker(self, ctx: AuditContext, destination: str, state: str,
                          reason: str) -> dict[str, Any]:
        if destination not in self._destinations():
            raise NotFoundError("not_found", f"no destination {destination!r} (a partner id "
                                "or a rail name)")
        ctx.target(f"destination:{destination}")
        ctx.reason = reason
        now = self.clock()
        who = ctx.identity.user if ctx.identity else "-"
        async with self.uow() as uow:
            await set_override(uow.conn, destination, state, by=who, reason=reason, now=now)
            await write_record(uow.conn, ctx, outcome="ok", status=200, now=now)
            await uow.commit()
        return {"destination": destination, "manual": state, "set_by": who,
                "reason": reason, "set_at": now.isoformat()}

    # -- partners --------------------------------------------------------------------------------

    async def partners(self, ctx: AuditContext) -> dict[str, Any]:
        async with self.uow(read_only=True) as uow:
            stats = await q.partner_stats(uow.conn, [p.id for p in self.registry])
            suspended = await all_suspensions(uow.conn)
            overrides = await all_overrides(uow.conn)
        out = []
        for p in self.registry:
            s, o = stats.get(p.id, {}), overrides.get(p.id)
            sus = suspended.get(p.id)
            last = [t for t in (s.get("last_inbound_at"), s.get("last_delivered_at")) if t]
            out.append({
                "partner_id": p.id, "name": p.name, "mode": p.mode,
                "suspended": p.suspended or sus is not None,
                "suspension": ({"by": sus.suspended_by, "reason": sus.reason,
                                "at": _iso(sus.suspended_at)} if sus else
                               {"by": "registry", "reason": "suspended in the registry",
                                "at": None} if p.suspended else None),
                "last_success_at": _iso(max(last)) if last else None,
                "last_inbound_at": _iso(s.get("last_inbound_at")),
                "last_delivered_at": _iso(s.get("last_delivered_at")),
                "failures": s.get("failing", 0), "dead": s.get("dead", 0),
                "queue": s.get("queued", 0),
                "breaker": "open" if (o is not None and o.state == "open") or sus else "auto",
            })
        return {"partners": out}

    def _partner(self, partner_id: str) -> None:
        if self.registry.get(partner_id) is None:
            raise NotFoundError("not_found", f"no partner {partner_id}")

    async def suspend_partner(self, ctx: AuditContext, partner_id: str,
                              reason: str) -> dict[str, Any]:
        self._partner(partner_id)
        ctx.target(f"partner:{partner_id}")
        ctx.reason = reason
        now = self.clock()
        who = ctx.identity.user if ctx.identity else "-"
        async with self.uow() as uow:
            new = await suspend(uow.conn, partner_id, by=who, reason=reason, now=now)
            await write_record(uow.conn, ctx, outcome="ok", status=200, now=now)
            await uow.commit()
        self.suspensions.forget()
        return {"partner_id": partner_id, "suspended": True, "already": not new}

    # -- partner keys ----------------------------------------------------------------------------

    def _file_ring(self) -> KeyRing:
        return self.keys.file_ring if self.keys is not None else self.registry.keys

    def _taken_ring(self) -> KeyRing:
        """The partners file's keys and the hub's own: a new partner key may take none of
        their ids (one under the hub's id would have the evidence check the hub's signatures
        with the partner's key, and fail them for good)."""
        ring = KeyRing()
        for key in self._file_ring():
            ring.put(key)
        for key in self.verify_keys() if self.verify_keys is not None else ():
            if ring.get(key.kid) is None:
                ring.put(key)
        return ring

    async def partner_keys(self, ctx: AuditContext, partner_id: str) -> dict[str, Any]:
        self._partner(partner_id)
        ctx.target(f"partner:{partner_id}")
        now = self.clock()
        async with self.uow() as uow:
            # The partners file's keys join the table the first time anyone looks (bootstrap).
            await pkeys.seed(uow.conn, self._file_ring(), now)
            found = await pkeys.keys_of(uow.conn, partner_id)
            await uow.commit()
        return {"partner_id": partner_id, "keys": [self._key_view(k, found, now) for k in found],
                "propagation_seconds": self._propagation(),
                "retire_overlap_hours": self.key_overlap.total_seconds() / 3600}

    def _propagation(self) -> float:
        return self.keys.ttl if self.keys is not None else 0.0

    def _key_view(self, k: StoredKey, keys: list[StoredKey], now: datetime) -> dict[str, Any]:
        days = (round((k.expires_at - now).total_seconds() / 86400, 1)
                if k.expires_at is not None else None)
        blocker = pkeys.retire_blocker(keys, k.kid, now, self.key_overlap)
        return {"kid": k.kid, "partner_id": k.partner_id, "state": k.state, "jwk": k.jwk,
                "verifies_new_messages": k.state in pkeys.ACCEPTING,
                "not_before": _iso(k.not_before), "expires_at": _iso(k.expires_at),
                "days_to_expiry": days, "added_by": k.added_by, "added_at": _iso(k.added_at),
                "activated_by": k.activated_by, "activated_at": _iso(k.activated_at),
                "retired_by": k.retired_by, "retired_at": _iso(k.retired_at),
                "retirable": blocker is None, "retire_blocked_by": blocker}

    async def add_partner_key(self, ctx: AuditContext, partner_id: str, jwk: dict[str, Any], *,
                              reason: str, not_before: datetime | None,
                              expires_at: datetime | None) -> dict[str, Any]:
        self._partner(partner_id)
        ctx.target(f"partner:{partner_id}", f"key:{jwk.get('kid')}")
        ctx.reason = reason
        now = self.clock()
        who = ctx.identity.user if ctx.identity else "-"
        async with self.uow() as uow:
            await pkeys.seed(uow.conn, self._file_ring(), now)
            added = await pkeys.add(uow.conn, partner_id, jwk, by=who, now=now,
                                    file_ring=self._taken_ring(), not_before=not_before,
                                    expires_at=expires_at)
            found = await pkeys.keys_of(uow.conn, partner_id)
            await write_record(uow.conn, ctx, outcome="ok", status=201, now=now)
            await uow.commit()
        if self.keys is not None:
            self.keys.forget()
        return self._key_view(added, found, now) | {
            "effective_everywhere_by": _iso(now + timedelta(seconds=self._propagation()))}

    async def activate_partner_key(self, ctx: AuditContext, partner_id: str, kid: str, *,
                                   reason: str) -> dict[str, Any]:
        self._partner(partner_id)
        ctx.target(f"partner:{partner_id}", f"key:{kid}")
        ctx.reason = reason
        now = self.clock()
        who = ctx.identity.user if ctx.identity else "-"
        async with self.uow() as uow:
            done = await pkeys.activate(uow.conn, partner_id, kid, by=who, now=now)
            found = await pkeys.keys_of(uow.conn, partner_id)
            await write_record(uow.conn, ctx, outcome="ok", status=200, now=now)
            await uow.commit()
        if self.keys is not None:
            self.keys.forget()
        return self._key_view(done, found, now) | {
            "effective_everywhere_by": _iso(now + timedelta(seconds=self._propagation())),
            "predecessors_retirable_from": _iso(now + self.key_overlap)}

    # -- payments --------------------------------------------------------------------------------

    async def payments_page(self, ctx: AuditContext, where: repo.PaymentFilter, *,
                            cursor: str | None, limit: int, unmasked: bool) -> Page:
        show = self._unmask(ctx, unmasked)
        before = q.before_cursor(cursor)
        async with self.uow(read_only=True) as uow:
            rows = await repo.newest(uow.conn, where, before=before, limit=limit)
        if show:
            ctx.target(*(f"payment:{r.payment_id}" for r in rows))
        return {"payments": [_payment(r, None, show) for r in rows], "next": _next(rows, limit)}

    async def payment(self, ctx: AuditContext, payment_id: str, *,
                      unmasked: bool) -> dict[str, Any]:
        show = self._unmask(ctx, unmasked)
        ctx.target(f"payment:{payment_id}")
        async with self.uow(read_only=True) as uow:
            row = (await repo.by_ids(uow.conn, [payment_id])).get(payment_id)
            if row is None:
                raise NotFoundError("not_found", f"no payment {payment_id}")
            events = await repo.events_of(uow.conn, row.pk)
            found = await repo.discrepancies(uow.conn, state=None, payment_id=payment_id)
        view = _payment(row, events, show)
        view["discrepancies"] = [discrepancy_view(d) for d in found]
        return view

    async def discrepancies(self, ctx: AuditContext, *, state: str | None,
                            payment_id: str | None, cursor: str | None, limit: int) -> Page:
        before = q.before_cursor(cursor)
        async with self.uow(read_only=True) as uow:
            rows = await repo.discrepancies_page(uow.conn, state=state, payment_id=payment_id,
                                                 before=before, limit=limit)
        return {"discrepancies": [discrepancy_view(r) for r in rows], "next": _next(rows, limit)}

    # -- reconciliation --------------------------------------------------------------------------

    async def recon_runs(self, ctx: AuditContext, *, rail: str | None, day: date | None,
                         cursor: str | None, limit: int) -> Page:
        before = q.before_cursor(cursor)
        async with self.uow(read_only=True) as uow:
            rows = await recon.runs_page(uow.conn, rail=rail, day=day, before=before,
                                         limit=limit)
        return {"runs": [run_view(r) for r in rows], "next": _next(rows, limit)}

    async def _run(self, conn: Any, ctx: AuditContext, run_id: str) -> RowMapping:
        ctx.target(f"recon_run:{run_id}")
        row = await recon.run_by_id(conn, run_id)
        if row is None:
            raise NotFoundError("not_found", f"no reconciliation run {run_id}")
        return row

    async def recon_run(self, ctx: AuditContext, run_id: str) -> dict[str, Any]:
        async with self.uow(read_only=True) as uow:
            row = await self._run(uow.conn, ctx, run_id)
        return {**run_view(row), "summary": json.loads(row.summary),
                "manifest": json.loads(row.manifest)}

    async def recon_items(self, ctx: AuditContext, run_id: str, *, kind: str | None,
                          cursor: str | None, limit: int) -> Page:
        after = q.before_cursor(cursor) or 0  # items page forward, in statement order
        async with self.uow(read_only=True) as uow:
            row = await self._run(uow.conn, ctx, run_id)
            items = await recon.items_page(uow.conn, row.pk, after=after, limit=limit,
                                           kind=kind)
        return {"items": [_recon_item(i) for i in items],
                "next": _next(items, limit, pk="seq")}

    def _today(self) -> date:
        return self.clock().astimezone(KL).date()

    async def recon_cases(self, ctx: AuditContext, *, state: str | None, kind: str | None,
                          rail: str | None, cursor: str | None, limit: int) -> Page:
        before = q.before_cursor(cursor)
        async with self.uow(read_only=True) as uow:
            rows = await recon.cases_page(uow.conn, state=state, kind=kind, rail=rail,
                                          before=before, limit=limit)
        today = self._today()
        return {"cases": [_recon_case(r, today) for r in rows], "next": _next(rows, limit)}

    async def recon_case(self, ctx: AuditContext, pk: int) -> dict[str, Any]:
        ctx.target(f"recon_case:{pk}")
        async with self.uow(read_only=True) as uow:
            row = await recon.case_by_pk(uow.conn, pk)
            if row is None:
                raise NotFoundError("not_found", f"no reconciliation case {pk}")
            payment = ((await repo.by_ids(uow.conn, [row.payment_id])).get(row.payment_id)
                       if row.payment_id else None)
        view = _recon_case(row, self._today())
        view["payment"] = ({"payment_id": payment.payment_id, "state": payment.state,
                            "rail": payment.rail} if payment is not None else None)
        return view

    # -- evidence --------------------------------------------------------------------------------

    async def verify_evidence(self, ctx: AuditContext, *, signatures: bool,
                              settle: timedelta) -> dict[str, Any]:
        """Recompute the evidence chain now (``gateway.evidence.chain.verify_chain``)."""
        ctx.target("evidence:chain")
        keys = None
        if signatures:
            if self.verify_keys is None:
                raise NotFoundError("not_found", "this hub has no verification keys")
            keys = self.verify_keys()
            # Keys rotated in through this API, retired ones too, verify what they signed
            # while in use: the same set as `gateway audit verify` (cli.audit_verify).
            async with self.uow(read_only=True) as uow:
                await pkeys.stored_ring(uow.conn, keys)
        report = await verify_chain(self.uow, settle=settle, clock=self.clock, keys=keys)
        head = report.head
        out: dict[str, Any] = {
            "ok": report.ok, "checked": report.checked, "broken": report.broken,
            "unchained": report.unchained, "tables": dict(sorted(report.tables.items())),
            "payments": {"compared": report.payments_compared,
                         "uncompared": report.payments_uncompared},
            "pension_schedules": {"compared": report.schedules_compared,
                                  "uncompared": report.schedules_uncompared},
            "head": {"seq": head.seq, "chain_sha256": head.chain_sha256} if head else None,
            "settle_seconds": int(settle.total_seconds()), "at": self.clock().isoformat()}
        if signatures:
            out["signatures"] = {"checked": report.signatures_checked,
                                 "unverifiable": report.unverifiable,
                                 "first_unverifiable": report.first_unverifiable}
        return out

    # -- proposals -------------------------------------------------------------------------------

    async def propose(self, ctx: AuditContext, action: str, params: dict[str, Any], *,
                      reason: str, draft: bool, expires_in: timedelta | None) -> dict[str, Any]:
        handler = ACTIONS[action]
        ctx.reason = reason
        now = self.clock()
        assert ctx.identity is not None
        async with self.uow() as uow:
            prepared = await handler.prepare(uow.conn, self._cx(), params)
            p = new_proposal(action=action, maker=ctx.identity.user, reason=reason,
                             params=params, targets=prepared.targets,
                             preview=prepared.preview, now=now,
                             expires_at=now + (expires_in or self.proposal_ttl), draft=draft)
            pk = await q.insert_proposal(uow.conn, p, now)
            ctx.proposal_pk = pk
            ctx.target(f"proposal:{pk}", *(f"{action}:{t}" for t in prepared.targets))
            await write_record(uow.conn, ctx, outcome="ok", status=201, now=now)
            await uow.commit()
        return proposal_view(replace(p, pk=pk), now)

    async def proposals(self, ctx: AuditContext, *, state: str | None, action: str | None,
                        cursor: str | None, limit: int) -> Page:
        before = q.before_cursor(cursor)
        now = self.clock()
        async with self.uow(read_only=True) as uow:
            found = await q.proposals_page(uow.conn, state=state, action=action, before=before,
                                           limit=limit, now=now)
        return {"proposals": [proposal_view(p, now) for p in found],
                "next": str(found[-1].pk) if len(found) == limit else None}

    async def proposal(self, ctx: AuditContext, pk: int) -> dict[str, Any]:
        ctx.target(f"proposal:{pk}")
        ctx.proposal_pk = pk
        async with self.uow(read_only=True) as uow:
            p = await q.proposal_by_pk(uow.conn, pk)
        if p is None:
            raise NotFoundError("not_found", f"no proposal {pk}")
        return proposal_view(p, self.clock())

    async def _decide(self, ctx: AuditContext, pk: int, decide: Any,
                      execute: bool = False) -> dict[str, Any]:
        """Load proposal ``pk`` locked, apply the domain step ``decide``, optionally execute
        it, store it and its audit record; an expired proposal is stored as expired."""
        ctx.target(f"proposal:{pk}")
        ctx.proposal_pk = pk
        now = self.clock()
        async with self.uow() as uow:
            p = await q.proposal_by_pk(uow.conn, pk, lock=True)
            if p is None:
                raise NotFoundError("not_found", f"no proposal {pk}")
            ctx.target(*(f"{p.action}:{t}" for t in p.targets))
            try:
                decided: Proposal = decide(p, now)
            except ProblemError as exc:
                lapsed = expire(p, now)
                if lapsed.state != p.state:  # record that it expired, then refuse
                    await q.update_proposal(uow.conn, lapsed, now)
                    await write_record(uow.conn, ctx, outcome="invalid", status=exc.status,
                                       now=now, detail=f"{exc.code}: {exc.detail}")
                    await uow.commit()
                raise
            if not execute:
                await q.update_proposal(uow.conn, decided, now)
                await write_record(uow.conn, ctx, outcome="ok", status=200, now=now)
                await uow.commit()
                return proposal_view(decided, now)
            stale: StaleTargetError | None = None
            try:
                result = await ACTIONS[p.action].execute(uow.conn, self._cx(), decided, now)
                done = executed(decided, result)
                await q.update_proposal(uow.conn, done, now)
                await write_record(uow.conn, ctx, outcome="ok", status=200, now=now)
                await uow.commit()
                return proposal_view(done, now)
            except StaleTargetError as exc:  # refused, not attempted: the approver hears 409
                stale, error = exc, f"{exc.code}: {exc.detail}"
            except ProblemError as exc:
                error = f"{exc.code}: {exc.detail}"
            except EvidenceMismatchError as exc:  # the payment is held (docs/evidence.md)
                log.error("ALERT proposal %s (%s) refused: %s", pk, p.action, exc)
                error = f"{exc.code}: {exc}"
            except Exception as exc:  # the act failed: record it, tell the approver
                log.exception("proposal %s (%s) failed on execution", pk, p.action)
                error = f"internal error ({type(exc).__name__})"
        async with self.uow() as uow:  # the act rolled back; the failure is recorded
            failed = execution_failed(decided, error)
            await q.update_proposal(uow.conn, failed, now)
            await write_record(uow.conn, ctx, outcome="invalid" if stale else "failed",
                               status=stale.status if stale else 200, now=now, detail=error)
            await uow.commit()
        if stale is not None:
            raise stale
        return proposal_view(failed, now)

    async def approve(self, ctx: AuditContext, pk: int, note: str | None) -> dict[str, Any]:
        assert ctx.identity is not None
        user = ctx.identity.user
        ctx.reason = note
        return await self._decide(ctx, pk, lambda p, now: approve(p, user, now, note),
                                  execute=True)

    async def reject(self, ctx: AuditContext, pk: int, note: str) -> dict[str, Any]:
        assert ctx.identity is not None
        user = ctx.identity.user
        ctx.reason = note
        return await self._decide(ctx, pk, lambda p, now: reject(p, user, now, note))

    async def edit(self, ctx: AuditContext, pk: int, reason: str) -> dict[str, Any]:
        assert ctx.identity is not None
        user = ctx.identity.user
        ctx.reason = reason
        return await self._decide(ctx, pk, lambda p, now: edit(p, user, now, reason=reason))

    async def submit(self, ctx: AuditContext, pk: int) -> dict[str, Any]:
        assert ctx.identity is not None
        user = ctx.identity.user
        return await self._decide(ctx, pk, lambda p, now: submit(p, user, now))

    # -- audit -----------------------------------------------------------------------------------

    async def audit(self, ctx: AuditContext, f: q.AuditFilter, *, cursor: str | None,
                    limit: int) -> Page:
        before = q.before_cursor(cursor)
        async with self.uow(read_only=True) as uow:
            rows = await q.audit_page(uow.conn, f, before=before, limit=limit)
        return {"records": [audit_view(r) for r in rows], "next": _next(rows, limit)}

    async def audit_export(self, ctx: AuditContext, f: q.AuditFilter, *, after: str | None,
                           page: int = 1000) -> AsyncIterator[dict[str, Any]]:
        """Yield every audit record after ``after`` in commit-safe order, page by page; the
        last item is ``{"next": cursor}`` to resume from."""
        position = q.export_cursor(after)
        cursor = after
        while True:
            async with self.uow(read_only=True) as uow:
                rows, last = await q.audit_after(uow.conn, f, after=position, limit=page)
            for r in rows:
                yield audit_view(r)
            if last is None:
                break
            cursor = last
            position = q.export_cursor(last)
            if len(rows) < page:
                break
        yield {"next": cursor}


def _recon_item(r: RowMapping) -> dict[str, Any]:
    view = item_view(r)
    view["detail"] = sanitise_error(view["detail"])
    return view


def _recon_case(r: RowMapping, today: date) -> dict[str, Any]:
    # A case holds no personal data; its free texts are shown as stored errors are.
    view = case_view(r, today)
    view["detail"] = sanitise_error(view["detail"])
    view["closed_note"] = sanitise_error(view["closed_note"])
    return view


def _message_summary(r: RowMapping) -> dict[str, Any]:
    return {"id": r.pk, "direction": r.direction, "partner_id": r.partner_id,
            "message_id": r.message_id, "sender": r.sender, "recipient": r.recipient,
            "type": r.type, "correlation_id": r.correlation_id, "sent_at": _iso(r.sent_at),
            "received_at": _iso(r.received_at), "kid": r.kid,
            "state": r.state, "state_detail": sanitise_error(r.state_detail),
            "state_at": _iso(r.state_at)}


def _payment(row: RowMapping, events: list[RowMapping] | None, show: bool) -> dict[str, Any]:
    view = payment_view(row, events)
    view["beneficiary"] = {"name": row.beneficiary_name,
                           "id": row.beneficiary_id if show else
                           mask_national_id(row.beneficiary_id)}
    view["payout"] = {"provider": row.provider, "account_name": row.account_name,
                      "account": row.account if show else mask_account(row.account)}
    view["masked"] = not show
    return view

