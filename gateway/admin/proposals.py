"""Maker-checker proposals: plain Python, no I/O.

    draft ──▶ pending ──▶ approved ──▶ executed | failed
      │          ├──────▶ rejected
      └──────────┴──────▶ expired

A money or trust action (replaying dead letters, skipping one, resolving a payment's outcome
or a discrepancy, asking a rail to cancel, resuming a partner) is proposed by one person and
approved by another. The rules:

- a reason is required (it goes to the audit trail with every decision);
- the target set is frozen when the proposal is made, with its count and a preview of what it
  will touch: approving a replay of "these 12 tasks" can never replay a 13th;
- the approver differs from the maker and from everyone who edited the proposal, since an
  edit can change what is approved;
- a proposal expires: one that waited past ``expires_at`` can no longer be approved (nor
  edited), only seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from gateway.errors import ConflictError, ForbiddenError, InvalidMessageError

__all__ = ["LAPSING", "Proposal", "ProposalState", "approve", "edit", "execution_failed",
           "executed", "expire", "new_proposal", "reject", "submit"]

MAX_REASON = 2000


class ProposalState(StrEnum):
    draft = "draft"
    pending = "pending"
    approved = "approved"
    executed = "executed"
    rejected = "rejected"
    expired = "expired"
    failed = "failed"


S = ProposalState
# The states a proposal leaves by itself, for expired, once its expiry passes (stored as it
# was until someone acts on it: reads see it as it stands, ``expire``).
LAPSING = frozenset({S.draft, S.pending})


@dataclass(frozen=True, slots=True)
class Proposal:
    action: str
    maker: str
    reason: str
    params: dict[str, Any]
    targets: tuple[str, ...]
    preview: dict[str, Any]
    created_at: datetime
    expires_at: datetime
    state: ProposalState = S.pending
    editors: tuple[str, ...] = ()
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None
    result: dict[str, Any] | None = field(default=None)
    pk: int | None = None

    @property
    def target_count(self) -> int:
        return len(self.targets)


def _reason(text: str | None, what: str = "reason") -> str:
    text = (text or "").strip()
    if not text:
        raise InvalidMessageError("schema_violation", f"{what}: a reason is required")
    if len(text) > MAX_REASON:
        raise InvalidMessageError("schema_violation", f"{what}: at most {MAX_REASON} characters")
    return text


def new_proposal(*, action: str, maker: str, reason: str | None, params: dict[str, Any],
                 targets: list[str], preview: dict[str, Any], now: datetime,
                 expires_at: datetime, draft: bool = False) -> Proposal:
    """Make a proposal with its frozen target set.

    Raises:
        InvalidMessageError: schema_violation, no reason, no targets, or an expiry in the past.
    """
    if not targets:
        raise InvalidMessageError("schema_violation", "the proposal would touch nothing")
    if expires_at <= now:
        raise InvalidMessageError("schema_violation", "expires_at must be in the future")
    return Proposal(action=action, maker=maker, reason=_reason(reason), params=params,
                    targets=tuple(targets), preview=preview, created_at=now,
                    expires_at=expires_at, state=S.draft if draft else S.pending)


def _live(p: Proposal, now: datetime) -> None:
    if p.state in LAPSING and now >= p.expires_at:
        raise ConflictError("proposal_expired", f"proposal {p.pk} expired at "
                            f"{p.expires_at.isoformat()}")


def _in(p: Proposal, *states: ProposalState) -> None:
    if p.state not in states:
        raise ConflictError("state_conflict", f"proposal {p.pk} is {p.state}, not "
                            f"{' or '.join(states)}")


def edit(p: Proposal, editor: str, now: datetime, *, reason: str | None = None) -> Proposal:
    """Change an open proposal's reason; the editor can then no longer approve it.

    The target set is never edited: a different set is a new proposal.
    """
    _live(p, now)
    _in(p, S.draft, S.pending)
    editors = p.editors if editor in p.editors else (*p.editors, editor)
    return replace(p, reason=_reason(reason) if reason is not None else p.reason,
                   editors=editors)


def submit(p: Proposal, user: str, now: datetime) -> Proposal:
    """Put a draft up for approval (its maker or an editor)."""
    _live(p, now)
    _in(p, S.draft)
    if user != p.maker and user not in p.editors:
        raise ForbiddenError("forbidden", "only the maker or an editor submits a draft")
    return replace(p, state=S.pending)


def approve(p: Proposal, approver: str, now: datetime, note: str | None) -> Proposal:
    """Approve a pending proposal (four eyes).

    Raises:
        ConflictError: proposal_expired, or state_conflict (not pending).
        ForbiddenError: four_eyes, the approver made or edited it.
    """
    _live(p, now)
    _in(p, S.pending)
    if approver == p.maker or approver in p.editors:
        raise ForbiddenError("four_eyes", f"{approver} made or edited proposal {p.pk}; "
                             "another approver must decide it")
    return replace(p, state=S.approved, decided_by=approver, decided_at=now,
                   decision_note=note)


def reject(p: Proposal, user: str, now: datetime, note: str | None) -> Proposal:
    """Reject an open proposal; a reason is required. The maker may withdraw their own."""
    _live(p, now)
    _in(p, S.draft, S.pending)
    return replace(p, state=S.rejected, decided_by=user, decided_at=now,
                   decision_note=_reason(note, "note"))


def expire(p: Proposal, now: datetime) -> Proposal:
    """The proposal as it stands at ``now``: an open one past its expiry is expired."""
    if p.state in LAPSING and now >= p.expires_at:
        return replace(p, state=S.expired)
    return p


def executed(p: Proposal, result: dict[str, Any]) -> Proposal:
    _in(p, S.approved)
    return replace(p, state=S.executed, result=result)


def execution_failed(p: Proposal, error: str) -> Proposal:
    _in(p, S.approved)
    return replace(p, state=S.failed, result={"error": error})
