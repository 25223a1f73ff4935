"""The maker-checker state machine (plain Python)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.admin.proposals import (
    Proposal,
    ProposalState,
    approve,
    edit,
    executed,
    execution_failed,
    expire,
    new_proposal,
    reject,
    submit,
)
from gateway.errors import ConflictError, ForbiddenError, InvalidMessageError

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


def make(**over: object) -> Proposal:
    args: dict[str, object] = dict(action="replay", maker="alice", reason="retry",
                                   params={}, targets=["1", "2"], preview={"n": 2}, now=NOW,
                                   expires_at=NOW + timedelta(hours=24))
    args.update(over)
    return new_proposal(**args)  # type: ignore[arg-type]


def test_a_proposal_freezes_its_targets_and_needs_a_reason() -> None:
    p = make()
    assert p.state == ProposalState.pending and p.target_count == 2 and p.targets == ("1", "2")
    for reason in ("", "   ", None, "x" * 2001):
        with pytest.raises(InvalidMessageError):
            make(reason=reason)
    with pytest.raises(InvalidMessageError):
        make(targets=[])
    with pytest.raises(InvalidMessageError):
        make(expires_at=NOW)


def test_the_approver_differs_from_the_maker_and_every_editor() -> None:
    p = edit(make(), "bob", LATER, reason="retry (ticket 7)")
    assert p.editors == ("bob",) and p.reason == "retry (ticket 7)"
    assert edit(p, "bob", LATER).editors == ("bob",)  # listed once
    for who in ("alice", "bob"):
        with pytest.raises(ForbiddenError) as err:
            approve(p, who, LATER, None)
        assert err.value.code == "four_eyes"
    done = approve(p, "carol", LATER, "ok")
    assert done.state == ProposalState.approved and done.decided_by == "carol"
    assert executed(done, {"replayed": [1]}).state == ProposalState.executed
    assert execution_failed(done, "boom").result == {"error": "boom"}


def test_an_expired_proposal_can_be_neither_approved_nor_edited() -> None:
    p = make(expires_at=NOW + timedelta(minutes=30))
    assert expire(p, LATER).state == ProposalState.expired
    assert expire(p, NOW).state == ProposalState.pending
    for step in (lambda: approve(p, "carol", LATER, None), lambda: edit(p, "bob", LATER),
                 lambda: reject(p, "carol", LATER, "no")):
        with pytest.raises(ConflictError) as err:
            step()
        assert err.value.code == "proposal_expired"


def test_states_allow_only_their_moves() -> None:
    draft = make(draft=True)
    with pytest.raises(ConflictError):
        approve(draft, "carol", LATER, None)
    with pytest.raises(ForbiddenError):
        submit(draft, "mallory", LATER)
    pending = submit(draft, "alice", LATER)
    rejected = reject(pending, "carol", LATER, "wrong account")
    assert rejected.state == ProposalState.rejected
    with pytest.raises(InvalidMessageError):
        reject(pending, "carol", LATER, "")
    for step in (lambda: approve(rejected, "carol", LATER, None),
                 lambda: edit(rejected, "bob", LATER), lambda: executed(pending, {})):
        with pytest.raises(ConflictError) as err:
            step()
        assert err.value.code == "state_conflict"
    assert expire(rejected, LATER + timedelta(days=9)).state == ProposalState.rejected
