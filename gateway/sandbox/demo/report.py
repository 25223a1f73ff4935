"""The demo's closing report: claims, messages, payments and the faults that fired."""

from __future__ import annotations

from typing import Any

from gateway.sandbox.demo.scenario import PARTNER_FAULTS, Scenario

__all__ = ["summary"]


def summary(sc: Scenario, rails: Any, rail_faults: dict[str, Any]) -> None:
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

