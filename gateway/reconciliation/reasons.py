"""The ISO 20022 external return reason codes the gateway acts on, and the action each implies.

Source: ISO 20022 External Code Sets, ``ExternalReturnReason1Code`` (the quarterly
"ExternalCodeSets" list published at https://www.iso20022.org/catalogue-messages/
additional-content-messages/external-code-sets; codes and names as of the 2024-2025 releases).
Only the codes a payout corridor meets are named; any other code is reviewed by ops.

The rule that matters: a payout returned because the account is wrong, closed or blocked
(``AC01``, ``AC04``, ``AC06``...) is never sent again to the same account; the case asks the
partner for new beneficiary details. A return for a death (``MD07``) stops and asks for
verification, because a pension to a person who died is an overpayment.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["REASONS", "Action", "Reason", "reason_for"]


class Action(StrEnum):
    """What ops do with a case (and what the gateway must never do on its own)."""

    new_beneficiary_details = "new_beneficiary_details"  # ask the partner; never retry as is
    verify_death = "verify_death"  # stop future payments; confirm with the partner
    ops_review = "ops_review"  # look at it: funds, duplicates, the rail's own reasons
    none = "none"


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    name: str  # the ISO name
    action: Action
    retry: bool  # may the same payout ever be sent again to the same account?


_NEW_DETAILS = Action.new_beneficiary_details
REASONS: dict[str, Reason] = {r.code: r for r in (
    Reason("AC01", "IncorrectAccountNumber", _NEW_DETAILS, False),
    Reason("AC03", "InvalidCreditorAccountNumber", _NEW_DETAILS, False),
    Reason("AC04", "ClosedAccountNumber", _NEW_DETAILS, False),
    Reason("AC06", "BlockedAccount", _NEW_DETAILS, False),
    Reason("AC13", "InvalidDebtorAccountType", _NEW_DETAILS, False),
    Reason("AG01", "TransactionForbidden", _NEW_DETAILS, False),
    Reason("BE01", "InconsistenWithEndCustomer", _NEW_DETAILS, False),
    Reason("BE04", "MissingCreditorAddress", _NEW_DETAILS, False),
    Reason("RC01", "BankIdentifierIncorrect", _NEW_DETAILS, False),
    Reason("MD07", "EndCustomerDeceased", Action.verify_death, False),
    Reason("AM04", "InsufficientFunds", Action.ops_review, True),
    Reason("AM05", "Duplication", Action.ops_review, False),
    Reason("AM09", "WrongAmount", Action.ops_review, False),
    Reason("DUPL", "DuplicatePayment", Action.ops_review, False),
    Reason("FOCR", "FollowingCancellationRequest", Action.ops_review, False),
    Reason("CUST", "RequestedByCustomer", Action.ops_review, False),
    Reason("MS02", "NotSpecifiedReasonCustomerGenerated", Action.ops_review, False),
    Reason("MS03", "NotSpecifiedReasonAgentGenerated", Action.ops_review, False),
    Reason("RR04", "RegulatoryReason", Action.ops_review, False),
    Reason("NARR", "Narrative", Action.ops_review, False),
)}


def reason_for(code: str | None) -> Reason | None:
    """The reason of a code (None for no code); an unknown code is reviewed by ops."""
    if not code:
        return None
    known = REASONS.get(code.strip().upper())
    return known or Reason(code.strip().upper(), "unknown code", Action.ops_review, False)
