"""The demo's invariants, checked in the database and the simulators after the hub stopped."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from gateway.sandbox.demo.scenario import PARTNERS, PENSION, Scenario

__all__ = ["final_checks"]


async def final_checks(sc: Scenario, settings: Any, rails: Any) -> None:
    from sqlalchemy import select

    from gateway.composition import partner_adapters
    from gateway.evidence.chain import chain_pending, verify_chain
    from gateway.protocol.partners import load_registry
    from gateway.protocol.signing import verify_detached
    from gateway.storage.engine import create_engine
    from gateway.storage.tables import (
        claim_documents,
        claims,
        delivery_receipts,
        message_state,
        messages,
        payments,
    )
    from gateway.storage.uow import factory_for

    sc.progress.begin("invariants and evidence chain")
    registry = load_registry(settings.partners_file, frozenset(partner_adapters()))
    engine = create_engine(settings.database_url)
    uow = factory_for(engine)
    try:
        async with uow(read_only=True) as reading:
            conn = reading.conn
            stored = {(r.partner_id, r.claim_ref): r for r in (await conn.execute(
                select(claims))).all()}
            docs = {(r.partner_id, r.claim_ref) for r in (await conn.execute(
                select(claim_documents))).all()}
            out = (await conn.execute(
                select(messages.c.pk, messages.c.message_id, messages.c.partner_id,
                       messages.c.type, messages.c.correlation_id, messages.c.wire,
                       message_state.c.state)
                .join(message_state, message_state.c.message_pk == messages.c.pk)
                .where(messages.c.direction == "out").order_by(messages.c.pk))).all()
            inbound = (await conn.execute(
                select(messages.c.pk, messages.c.partner_id, messages.c.type,
                       messages.c.correlation_id)
                .where(messages.c.direction == "in").order_by(messages.c.pk))).all()
            receipts = {r.message_pk: r for r in (await conn.execute(
                select(delivery_receipts))).all()}
            rows = list((await conn.execute(select(payments).order_by(payments.c.pk))).all())
        for ref, c in sc.claims.items():
            if (c["partner"], ref) not in stored:
                sc.problems.append(f"claim {ref} of {c['partner']} was not recorded")
            if c["documents"] and (c["partner"], ref) not in docs:
                sc.problems.append(f"documents for {ref} were not recorded")
        sent: dict[str, set[str]] = {p: set() for p in PARTNERS}
        for m in out:
            sent[m.partner_id].add(m.message_id)
            push = registry.get(m.partner_id).mode == "push"  # type: ignore[union-attr]
            if m.state != ("delivered" if push else "acknowledged"):
                sc.problems.append(f"{m.type} {m.message_id} to {m.partner_id} is {m.state}")
            if push:
                proof = receipts.get(m.pk)
                if proof is None:
                    sc.problems.append(f"no delivery receipt for {m.message_id}")
                    continue
                signed = verify_detached(proof.body, proof.signature, registry.keys)
                receipt = sc.sims[m.partner_id].adapter.parse_receipt(proof.body)
                if signed.party != m.partner_id or receipt["message_id"] != m.message_id or \
                        receipt["body_sha256"] != hashlib.sha256(m.wire).hexdigest():
                    sc.problems.append(f"the delivery receipt of {m.message_id} does not match")
        for partner_id, ids in sent.items():
            got = set(sc.sims[partner_id].received)
            if got != ids:
                sc.problems.append(f"{partner_id} got {len(got)} distinct messages, the hub "
                                   f"sent {len(ids)} (missing {len(ids - got)}, extra "
                                   f"{len(got - ids)})")
        ledger = rails.ledger()
        for p in rows:
            want = sc.expected.get(p.payment_id)
            if p.state != want:
                sc.problems.append(f"payment {p.payment_id} is {p.state}, expected {want}")
            times = ledger.get(p.idempotency_key, 0)
            if times != (1 if p.state == "paid" else 0):
                sc.problems.append(f"payment {p.payment_id}: the rail paid it {times} time(s), "
                                   f"the gateway says {p.state}")
            died = sc.died_on
            if died and p.pension_ref == PENSION and p.period > f"{died:%Y-%m}" and \
                    p.state not in ("cancelled", "failed"):
                sc.problems.append(f"payment {p.payment_id} is for a period after the death")
        while await chain_pending(uow, full_sweep=True):
            pass
        report = await verify_chain(uow, settle=timedelta(0))
        if report.broken or report.unchained:
            sc.problems.append(f"evidence chain: broken={report.broken} "
                               f"unchained={report.unchained}")
        sc.out_messages = out
        sc.in_messages = inbound
        sc.payment_rows = rows
        sc.chain = report
    finally:
        await engine.dispose()
    head = sc.chain.head
    sc.progress.end(not sc.problems, f"chain verified: {sc.chain.checked} records, head "
                    f"{head.chain_sha256[:12] if head else '-'}")

