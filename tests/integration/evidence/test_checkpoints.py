"""Signed checkpoints catch what the chain alone cannot (an insider's rewrite), and verify
checks the records' signatures; on both databases."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from gateway.composition import Hub
from gateway.evidence.chain import chain_pending, verify_chain
from gateway.evidence.checkpoints import (
    latest_checkpoints,
    load_checkpoints,
    make_checkpoint,
    verification_keys,
    write_checkpoint_file,
)
from gateway.protocol.signing import KeyRing
from gateway.runtime.jobs import run_checkpoint
from gateway.storage.tables import evidence_chain, evidence_checkpoints, messages
from tests.support.insider import rewrite_record, unguard
from tests.support.partners import TestPartner

pytestmark = pytest.mark.anyio


async def _accept(client, partner: TestPartner, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        env = partner.envelope()
        body, headers = partner.signed(env)
        resp = await client.post("/v1/messages", content=body, headers=headers)
        assert resp.status_code == 202, resp.text
        ids.append(env["id"])
    return ids


async def _chain_all(hub: Hub) -> None:
    while await chain_pending(hub.uow, clock=hub.clock):
        pass


def _keys(hub: Hub) -> tuple[KeyRing, KeyRing]:
    s = hub.settings
    return verification_keys(s.signing_key_file, None, s.partners_file)


async def _exported(hub: Hub, tmp_path: Path) -> list:
    path = tmp_path / "checkpoints.json"
    write_checkpoint_file(path, await latest_checkpoints(hub.uow), hub.signer.jwks())
    hub_keys, _ = _keys(hub)
    return [c.point() for c in load_checkpoints(path, hub_keys)]


async def _pk(hub: Hub, message_id: str) -> int:
    async with hub.engine.connect() as conn:
        return (await conn.execute(select(messages.c.pk)
                                   .where(messages.c.message_id == message_id))).scalar_one()


async def test_a_checkpoint_signs_the_head_once_and_verify_matches_it(
        client, hub: Hub, bpjstk, tmp_path: Path) -> None:
    assert await make_checkpoint(hub.uow, hub.signer, clock=hub.clock) is None  # empty chain
    await _accept(client, bpjstk, 4)
    await _chain_all(hub)
    cp = await make_checkpoint(hub.uow, hub.signer, clock=hub.clock)
    assert cp is not None and cp.seq == 4
    assert await make_checkpoint(hub.uow, hub.signer, clock=hub.clock) is None  # unchanged
    points = await _exported(hub, tmp_path)
    report = await verify_chain(hub.uow, clock=hub.clock, trusted=points)
    assert report.ok and report.checkpoints_matched == 1
    assert report.head is not None and report.head.chain_sha256 == cp.chain_sha256
    body = json.loads(cp.payload)
    assert body["seq"] == 4 and body["chain_sha256"] == cp.chain_sha256


async def test_insider_rewrite_passes_plain_verify_and_fails_against_the_checkpoint(
        client, hub: Hub, bpjstk, tmp_path: Path) -> None:
    await _accept(client, bpjstk, 3)
    await _chain_all(hub)
    await make_checkpoint(hub.uow, hub.signer, clock=hub.clock)
    ids = await _accept(client, bpjstk, 3)
    await _chain_all(hub)
    await make_checkpoint(hub.uow, hub.signer, clock=hub.clock)
    points = await _exported(hub, tmp_path)
    target = await _pk(hub, ids[1])
    async with hub.engine.begin() as conn:
        wire = (await conn.execute(select(messages.c.wire)
                                   .where(messages.c.pk == target))).scalar_one()
        forged = wire.replace(b"KLM-2026-0042", b"KLM-2026-9999")
        assert forged != wire
        seq = await rewrite_record(conn, "messages", target,
                                   {"wire": forged,
                                    "body_sha256": hashlib.sha256(forged).hexdigest()})
    assert seq == 5
    plain = await verify_chain(hub.uow, clock=hub.clock)
    assert plain.ok and plain.checked == 6
    _, everyone = _keys(hub)
    report = await verify_chain(hub.uow, clock=hub.clock, trusted=points, probe_keys=everyone)
    assert not report.ok and report.checkpoints_matched == 1
    assert report.broken is not None
    assert "history in seq 4..6 was rewritten" in report.broken
    assert (f"the first rewritten record: messages pk {target} (message {ids[1]} from "
            "ID-BPJSTK): the partner signature does not verify") in report.broken


async def test_insider_rewrite_of_a_payment_fails_against_the_checkpoint_naming_it(
        client, hub: Hub, bpjstk, tmp_path: Path) -> None:
    """A payment carries no signature, so no key tells it from its neighbours: verify names
    the unsigned records of the rewritten range (between two checkpoints), the payment among
    them, after checking that every signed record there still verifies."""
    from gateway.storage.tables import payment_events
    from tests.support.recon import add_payment

    await add_payment(hub.uow, "PAY-A")
    await _chain_all(hub)
    await make_checkpoint(hub.uow, hub.signer, clock=hub.clock)
    await _accept(client, bpjstk, 1)
    target = await add_payment(hub.uow, "PAY-B", amount="250.00")
    await _chain_all(hub)
    await make_checkpoint(hub.uow, hub.signer, clock=hub.clock)
    points = await _exported(hub, tmp_path)
    async with hub.engine.begin() as conn:
        event = (await conn.execute(select(payment_events.c.pk).where(
            payment_events.c.payment_pk == target))).scalar_one()
        seq = await rewrite_record(conn, "payments", target, {"amount_minor": 2_500_000})
    assert seq == 4  # after its tick's message
    plain = await verify_chain(hub.uow, clock=hub.clock)
    assert plain.ok and plain.checked == 5
    named = (f"the unsigned records there: payments pk {target} (payment PAY-B), "
             f"payment_events pk {event} (payment pk {target}, instructed))")
    _, everyone = _keys(hub)
    report = await verify_chain(hub.uow, clock=hub.clock, trusted=points, probe_keys=everyone)
    assert not report.ok and report.checkpoints_matched == 1
    assert report.broken is not None
    assert "history in seq 3..5 was rewritten (every signature there still verifies; no " \
           "signature tells which record; " + named in report.broken, report.broken
    unprobed = await verify_chain(hub.uow, clock=hub.clock, trusted=points)
    assert unprobed.broken is not None and unprobed.broken.endswith(
        "history in seq 3..5 was rewritten (no signature tells which record; " + named)


async def test_removing_the_newest_entries_shows_against_the_checkpoint(
        client, hub: Hub, bpjstk, tmp_path: Path) -> None:
    await _accept(client, bpjstk, 3)
    await _chain_all(hub)
    await make_checkpoint(hub.uow, hub.signer, clock=hub.clock)
    points = await _exported(hub, tmp_path)
    async with hub.engine.begin() as conn:
        await unguard(conn)
        await conn.execute(delete(evidence_chain).where(evidence_chain.c.seq == 3))
    report = await verify_chain(hub.uow, clock=hub.clock, trusted=points)
    assert report.broken is not None and "chained history was removed" in report.broken


async def test_verify_checks_partner_and_receipt_signatures(client, hub: Hub, bpjstk) -> None:
    ids = await _accept(client, bpjstk, 3)
    await _chain_all(hub)
    hub_keys, everyone = _keys(hub)
    report = await verify_chain(hub.uow, clock=hub.clock, keys=everyone)
    assert report.ok and report.signatures_checked == 6 and report.unverifiable == 0
    # Without the partner's keys (say it retired them from the registry): unverifiable, not
    # broken; the hub's receipts still verify.
    report = await verify_chain(hub.uow, clock=hub.clock, keys=hub_keys)
    assert report.ok and report.unverifiable == 3 and report.signatures_checked == 6
    assert report.first_unverifiable is not None
    assert "unverifiable partner signature" in report.first_unverifiable
    # A swapped signature (another message's), with the chain recomputed: broken.
    target, other = await _pk(hub, ids[0]), await _pk(hub, ids[1])
    async with hub.engine.begin() as conn:
        sig = (await conn.execute(select(messages.c.signature)
                                  .where(messages.c.pk == other))).scalar_one()
        await rewrite_record(conn, "messages", target, {"signature": sig})
    report = await verify_chain(hub.uow, clock=hub.clock, keys=everyone)
    assert report.broken == (f"messages pk {target} (message {ids[0]} from ID-BPJSTK): "
                             "the partner signature does not verify")


async def test_trusting_stored_hashes_misses_a_flipped_wire_byte(client, hub: Hub,
                                                                  bpjstk) -> None:
    ids = await _accept(client, bpjstk, 2)
    await _chain_all(hub)
    target = await _pk(hub, ids[0])
    async with hub.engine.begin() as conn:
        await unguard(conn)
        wire = (await conn.execute(select(messages.c.wire)
                                   .where(messages.c.pk == target))).scalar_one()
        flipped = bytearray(wire)
        flipped[10] ^= 1
        await conn.execute(messages.update().where(messages.c.pk == target)
                           .values(wire=bytes(flipped)))
    # What each proves: re-hashing the bytes finds it; trusting body_sha256 does not.
    assert not (await verify_chain(hub.uow, clock=hub.clock)).ok
    assert (await verify_chain(hub.uow, clock=hub.clock, trust_stored_hashes=True)).ok


async def test_the_job_signs_checkpoints_and_rewrites_the_export_file(
        client, hub: Hub, bpjstk, tmp_path: Path) -> None:
    path = tmp_path / "exported.json"
    hub.settings.evidence_checkpoint_file = path
    await _accept(client, bpjstk, 2)
    await _chain_all(hub)
    assert await run_checkpoint(hub) is True
    assert await run_checkpoint(hub) is False
    await _accept(client, bpjstk, 1)
    await _chain_all(hub)
    assert await run_checkpoint(hub) is True
    hub_keys, _ = _keys(hub)
    assert [c.seq for c in load_checkpoints(path, hub_keys)] == [2, 3]


async def test_postgresql_refuses_update_and_delete_of_evidence(client, hub: Hub,
                                                                bpjstk) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    if hub.engine.dialect.name != "postgresql":
        pytest.skip("the append-only guard is a PostgreSQL trigger")
    ids = await _accept(client, bpjstk, 1)
    await _chain_all(hub)
    await make_checkpoint(hub.uow, hub.signer, clock=hub.clock)
    attempts = [
        messages.update().where(messages.c.message_id == ids[0]).values(kid="other"),
        messages.delete().where(messages.c.message_id == ids[0]),
        evidence_chain.update().values(chain_sha256="0" * 64),
        evidence_chain.delete(),
        evidence_checkpoints.delete(),
        text("TRUNCATE evidence_chain"),
    ]
    for stmt in attempts:
        with pytest.raises(DBAPIError, match="append-only"):
            async with hub.engine.begin() as conn:
                await conn.execute(stmt)
    # The column-level rule: a guarded table's declared mutable columns may still change.
    async with hub.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE guarded_demo (pk int, body text, state text)"))
        await conn.execute(text("CREATE TRIGGER g BEFORE UPDATE OR DELETE ON guarded_demo "
                                "FOR EACH ROW EXECUTE FUNCTION px_guard_evidence('state')"))
        await conn.execute(text("INSERT INTO guarded_demo VALUES (1, 'b', 'new')"))
        await conn.execute(text("UPDATE guarded_demo SET state = 'done'"))
    with pytest.raises(DBAPIError, match="immutable column"):
        async with hub.engine.begin() as conn:
            await conn.execute(text("UPDATE guarded_demo SET body = 'x'"))
    async with hub.engine.connect() as conn:
        assert (await conn.execute(select(messages.c.kid))).scalar_one() != "other"
