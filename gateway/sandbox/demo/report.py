"""The demo's closing report: a short summary and what to try next; with ``--verbose`` the
claims, messages, payments and the faults that fired, row by row."""

from __future__ import annotations

from collections import Counter
from typing import Any

from gateway.sandbox.demo.scenario import PARTNER_FAULTS, Scenario

__all__ = ["summary", "tables"]

TRY_NEXT = [
    ("gateway demo --verbose", "every claim, message and payment of this run, row by row"),
    ("gateway demo --keep demo-files", "keep its database, keys and registry to look at"),
    ("gateway serve --with-simulators", "your own hub and every simulator; then send a claim "
                                        "by hand (README, \"First hour\")"),
]


def summary(sc: Scenario, rails: Any, rail_faults: dict[str, Any], *,
            verbose: bool = False) -> None:
    """Print the short summary (and with ``verbose`` the full tables first)."""
    if verbose:
        tables(sc, rails, rail_faults)
    claims = sc.claims.values()
    statuses = Counter(c["statuses"][-1] if c["statuses"] else "-" for c in claims)
    partners = {c["partner"] for c in claims}
    wires = {c["wire"] for c in claims}
    documents = sum(1 for c in claims if c["documents"])
    payments = Counter(p.state for p in sc.payment_rows)
    paid_by_rail = Counter(p.rail for p in sc.payment_rows if p.state == "paid")
    ledger = rails.ledger()
    paid_once = all(ledger.get(p.idempotency_key, 0) == 1
                    for p in sc.payment_rows if p.state == "paid")
    delivered = Counter(m.state for m in sc.out_messages)
    fired = sum(sum(f.fired.values()) for f in rail_faults.values())
    print("\nSummary")
    print(f"  claims     {len(sc.claims)} from {len(partners)} partners in {len(wires)} wire "
          f"formats: {statuses.get('paid', 0)} paid, {statuses.get('rejected', 0)} rejected; "
          f"{documents} had documents requested")
    print(f"  messages   {len(sc.in_messages)} in, {len(sc.out_messages)} out: "
          + ", ".join(f"{n} {state}" for state, n in sorted(delivered.items())))
    print(f"  payments   {payments.get('paid', 0)} paid"
          + (" once each" if paid_once else "")
          + " (" + ", ".join(f"{rail} {n}" for rail, n in sorted(paid_by_rail.items())) + ")"
          + "".join(f", {n} {state}" for state, n in sorted(payments.items())
                    if state != "paid"))
    print(f"  faults     {fired} rail faults and {len(PARTNER_FAULTS)} partner faults "
          "injected" + ("; every delivery and payout recovered" if not sc.problems else ""))
    if sc.chain is not None:
        print(f"  evidence   {sc.chain.checked} records in the hash chain, verified")
    print("\nTry next")
    width = max(len(cmd) for cmd, _ in TRY_NEXT)
    for cmd, what in TRY_NEXT:
        print(f"  {cmd:<{width}}  {what}")


def tables(sc: Scenario, rails: Any, rail_faults: dict[str, Any]) -> None:
    """Print every claim, message and payment of the run, and the faults that fired."""
    rows = sc.payment_rows
    by_claim = {p.claim_ref: p for p in rows if p.claim_ref}
    print("\nClaims")
    print(f"  {'claim':<12} {'partner':<10} {'wire':<10} {'SOCSO no':<20} {'docs':<5} "
          f"{'payment':<16} statuses seen by the partner")
    for ref, c in sc.claims.items():
        p = by_claim.get(ref)
        print(f"  {ref:<12} {c['partner']:<10} {c['wire']:<10} "
              f"{c.get('socso_claim_no', '-'):<20} {c['documents'] or '-'!s:<5} "
              f"{(p.state if p else '-'):<16} {' > '.join(c['statuses'])}")
    print("\nMessages (hub <-> partners)")
    print(f"  {'partner':<10} {'dir':<4} {'type':<24} {'thread':<14} state")
    both = [(m.pk, "in", m, "received") for m in sc.in_messages]
    both += [(m.pk, "out", m, m.state) for m in sc.out_messages]
    for _pk, direction, m, state in sorted(both, key=lambda t: t[0]):
        print(f"  {m.partner_id:<10} {direction:<4} {m.type:<24} "
              f"{m.correlation_id or '-':<14} {state}")
    deliveries = {pid: (len(s.deliveries), len(s.received)) for pid, s in sc.sims.items()}
    print("  partner simulators (deliveries incl. re-deliveries / distinct ids taken): " +
          ", ".join(f"{pid} {d}/{u}" for pid, (d, u) in deliveries.items()))
    print("\nPayments")
    print(f"  {'payment':<20} {'partner':<10} {'rail':<12} {'amount':>12}  {'state':<10} "
          f"{'rail paid':<9} note")
    ledger = rails.ledger()
    for p in rows:
        amount = f"{p.amount_minor // 100}.{p.amount_minor % 100:02d} {p.currency}"
        print(f"  {p.payment_id:<20} {p.partner_id:<10} {p.rail:<12} {amount:>12}  "
              f"{p.state:<10} {ledger.get(p.idempotency_key, 0):<9} "
              f"{(p.reason or '')[:60]}")
    fired = {name: dict(sorted((str(k), v) for k, v in f.fired.items()))
             for name, f in rail_faults.items()}
    print(f"\nRail faults fired: {fired}")
    print("Partner faults: " + ", ".join(f"{p} {f}" for p, f in PARTNER_FAULTS.items()))

