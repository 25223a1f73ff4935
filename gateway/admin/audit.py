"""The admin audit trail: one append-only record per admin request, chained as evidence.

A record says who (the token's subject, issuer and roles), what (the action, method, path
and the targets it named or touched), when, from where (the client address), why (the reason
an act carries), the outcome (``ok``, ``denied``, ``invalid``, ``failed``, with the status
and the refusal's code) and whether unmasked personal data was shown. Records are written by
the admin router for every request (``gateway.admin.api``), inside the act's own unit of work
when the act writes (the act and its record commit together, or neither), and are never
updated or deleted: the evidence chainer hashes them into the chain that ``gateway audit
verify`` checks.

From where: the peer address of the connection (the ASGI scope). ``X-Forwarded-For`` is
believed only when that peer is one of ``GATEWAY_ADMIN_TRUSTED_PROXIES``, and then the
right-most address not itself a trusted proxy is taken (the left-most is whatever the client
chose to write).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.admin.auth import AdminIdentity
from gateway.storage.commit_order import xact_id
from gateway.storage.tables import admin_audit

__all__ = ["AuditContext", "TrustedProxies", "audit_view", "write_record"]

MAX_TARGETS = 1000


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` the audit trail believes."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._nets = [ipaddress.ip_network(e, strict=False) for e in entries]

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._nets)

    def client_ip(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client's address as far as it can be known."""
        peer = peer or "-"
        if not forwarded_for or not self._trusted(peer):
            return peer
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop[:64]
        return peer


@dataclass
class AuditContext:
    """What the record of one admin request will say; the endpoint fills in targets and
    reason, and ``recorded`` once an act wrote the record in its own unit of work."""

    action: str
    method: str
    path: str
    client_ip: str
    identity: AdminIdentity | None = None
    targets: list[str] = field(default_factory=list)
    reason: str | None = None
    unmasked: bool = False
    proposal_pk: int | None = None
    recorded: bool = False

    def target(self, *items: object) -> None:
        self.targets.extend(str(i) for i in items)


async def write_record(conn: AsyncConnection, ctx: AuditContext, *, outcome: str, status: int,
                       now: datetime, detail: str | None = None) -> None:
    """Append the record of ``ctx`` in the caller's unit of work."""
    who = ctx.identity
    values: dict[str, Any] = dict(
        at=now, actor=who.user if who else "-", issuer=who.issuer if who else "-",
        roles=",".join(sorted(who.roles)) if who else "", action=ctx.action,
        method=ctx.method, path=ctx.path[:500],
        targets=orjson.dumps(ctx.targets[:MAX_TARGETS]).decode(),
        client_ip=ctx.client_ip[:64], reason=ctx.reason, outcome=outcome, status=status,
        detail=detail[:2000] if detail else None, unmasked=ctx.unmasked,
        proposal_pk=ctx.proposal_pk)
    if conn.dialect.name == "postgresql":
        values["xact_id"] = xact_id()
    await conn.execute(insert(admin_audit).values(**values))
    ctx.recorded = True


def audit_view(r: Any) -> dict[str, Any]:
    """An audit record as the auditors read it."""
    targets: Sequence[str] = orjson.loads(r.targets)
    return {"id": r.pk, "at": r.at.isoformat(), "actor": r.actor, "issuer": r.issuer,
            "roles": [x for x in r.roles.split(",") if x], "action": r.action,
            "method": r.method, "path": r.path, "targets": list(targets),
            "client_ip": r.client_ip, "reason": r.reason, "outcome": r.outcome,
            "status": r.status, "detail": r.detail, "unmasked": bool(r.unmasked),
            "proposal_id": r.proposal_pk}
