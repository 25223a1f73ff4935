"""``gateway demo``: the whole hub on loopback, a scripted scenario, a summary, exit 0 only if
every invariant held.

Everything runs on 127.0.0.1 in one process, in a temporary folder (``--keep`` keeps it):

- the hub on its embedded default: SQLite, with a dispatcher and the housekeeping jobs inside
  ``serve`` (so pension periods are created by the schedule, not by the script);
- the five partner simulators, each speaking its own wire format and signing with its own key:
  the four push partners serve their endpoints (the demo writes its own registry pointing at
  them), MM-SSB pulls its inbox and acknowledges with ``receipt.ack``;
- both rail simulators (Merchantrade e-wallet, ISO 20022 bank) with faults injected: timeouts,
  5xx before and after acting, resets, throttling, lost and duplicated callbacks; and partner
  faults: a 503, a dropped connection, a 500 after taking the message (re-delivered, then
  de-duplicated by id).

The scenario: each partner sends two claims (``claim.notify``); the hub answers ``claim.status
received``; the back office (its HTTP API and token) requests documents from three partners,
which reply with ``document.deliver``; it approves nine claims and rejects one, and instructs a
payment for each approved claim over the rail that suits the claimant's payout; the partners
get ``payment.notice`` and ``claim.status paid``. Then a pension for PK-MOPHRD's beneficiary
starts two months back while the bank rail is throttling; the schedule creates three periods;
the partner notifies the death (last month), which stops the schedule and cancels the unsent
payment for the period after the death; the rail recovers and pays the others.

Invariants (exit 0 only if all hold): every claim was received and acknowledged; every hub
message was delivered with a stored, verifying signed receipt (push) or acknowledged (pull);
each partner simulator got each of its messages, none missing or extra, each taken once by id;
every payment is paid exactly once by its rail's ledger and in the gateway (the cancelled one
never); no payment for a period after the death; tracking shows each partner its payments; the
evidence chain verifies (chain, then verify, as ``gateway audit chain``/``verify``).
"""

from gateway.sandbox.demo.run import run_demo

__all__ = ["run_demo"]
