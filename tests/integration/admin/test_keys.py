"""Partner key rotation through /admin/v1 (add -> activate -> retire under four eyes), on both
databases: what verifies at each step, the validation of a new key, the overlap, the roles, and
the audit record of every act."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from gateway.composition import Hub
from gateway.evidence.chain import chain_pending
from gateway.protocol.signing import Signer, generate_private_jwk, public_jwk
from tests.integration.admin.conftest import problem, trail
from tests.support.partners import TestPartner

pytestmark = pytest.mark.anyio

KEYS = "/admin/v1/partners/ID-BPJSTK/keys"


async def _send(client: Any, partner: TestPartner, clock: Any) -> Any:
    body, headers = partner.signed(partner.envelope(sent_at=clock.now))
    return await client.post("/v1/messages", content=body, headers=headers)


def _successor(kid: str = "bpjstk-2027") -> tuple[TestPartner, dict[str, Any]]:
    private = generate_private_jwk(kid)
    return TestPartner("ID-BPJSTK", Signer("ID-BPJSTK", [private])), public_jwk(private)


async def test_add_activate_retire_with_four_eyes(hub: Hub, client, as_, bpjstk,
                                                  clock) -> None:
    admin, other_admin = as_("ada", "admin"), as_("ben", "admin")
    approver = as_("carol", "approver")
    listed = await client.get(KEYS, headers=admin)
    assert listed.status_code == 200, listed.text
    [old] = listed.json()["keys"]
    assert old["kid"] == bpjstk.signer.kid and old["state"] == "active"
    assert old["added_by"] == "partners-file" and not old["retirable"]
    assert "no active successor" in old["retire_blocked_by"]

    new_partner, jwk = _successor()
    problem(await _send(client, new_partner, clock), 401, "unknown_key")
    r = await client.post(KEYS, headers=admin, json={
        "jwk": jwk, "reason": "BPJSTK's 2027 key (ticket 7)",
        "expires_at": (clock.now + timedelta(days=400)).isoformat()})
    assert r.status_code == 201, r.text
    added = r.json()
    assert added["state"] == "added" and added["days_to_expiry"] == 400.0
    assert added["verifies_new_messages"] and "effective_everywhere_by" in added
    # Added keys verify at once: the partner may switch before anyone activates it.
    assert (await _send(client, new_partner, clock)).status_code == 202
    assert (await _send(client, bpjstk, clock)).status_code == 202

    problem(await client.post(f"{KEYS}/{bpjstk.signer.kid}/retire", headers=admin,
                              json={"reason": "too early"}), 409, "state_conflict")
    r = await client.post(f"{KEYS}/bpjstk-2027/activate", headers=admin,
                          json={"reason": "partner switched"})
    assert r.status_code == 200 and r.json()["state"] == "active", r.text
    problem(await client.post(f"{KEYS}/bpjstk-2027/activate", headers=admin,
                              json={"reason": "again"}), 409, "state_conflict")
    # The overlap (24 h by default) has not passed since the successor was activated.
    body = problem(await client.post(f"{KEYS}/{bpjstk.signer.kid}/retire", headers=admin,
                                     json={"reason": "rotated"}), 409, "state_conflict")
    assert "overlap" in body["detail"]

    clock.now += timedelta(hours=25)
    r = await client.post(f"{KEYS}/{bpjstk.signer.kid}/retire", headers=admin,
                          json={"reason": "rotated to bpjstk-2027"})
    assert r.status_code == 201, r.text
    proposal = r.json()
    assert proposal["action"] == "retire_key" and proposal["targets"] == [bpjstk.signer.kid]
    assert (await _send(client, bpjstk, clock)).status_code == 202  # not retired until approved
    problem(await client.post(f"/admin/v1/proposals/{proposal['id']}/approve",
                              headers=other_admin), 403, "forbidden")  # admins do not approve
    r = await client.post(f"/admin/v1/proposals/{proposal['id']}/approve", headers=approver)
    assert r.status_code == 200 and r.json()["state"] == "executed", r.text

    problem(await _send(client, bpjstk, clock), 401, "key_retired")
    assert (await _send(client, new_partner, clock)).status_code == 202
    problem(await client.get("/v1/receipts/x", headers=bpjstk.token(clock.now)), 401,
            "key_retired")
    keys = {k["kid"]: k for k in (await client.get(KEYS, headers=admin)).json()["keys"]}
    assert keys[bpjstk.signer.kid]["state"] == "retired"
    assert keys[bpjstk.signer.kid]["retired_by"] == "ada, approved by carol"
    assert not keys[bpjstk.signer.kid]["verifies_new_messages"]

    acts = [(r.action, r.outcome, r.actor) for r in await trail(hub)]
    for act in [("keys.add", "ok", "ada"), ("keys.activate", "ok", "ada"),
                ("keys.retire", "ok", "ada"), ("proposals.approve", "ok", "carol"),
                ("keys.retire", "invalid", "ada"), ("keys.list", "ok", "ada")]:
        assert act in acts, act


async def test_a_new_key_is_validated(hub: Hub, client, as_, bpjstk) -> None:
    admin = as_("ada", "admin")
    _, jwk = _successor()
    private = generate_private_jwk("bpjstk-private")
    rsa = {"kty": "RSA", "kid": "bpjstk-rsa", "n": "AQAB", "e": "AQAB"}
    for bad, code, status in [
        (rsa, "schema_violation", 422),
        (private, "schema_violation", 422),  # a private key is never accepted
        (jwk | {"kid": ""}, "schema_violation", 422),
        (jwk | {"kid": "k" * 201}, "schema_violation", 422),
        (jwk | {"kid": "bad\x00kid"}, "schema_violation", 422),
        (jwk | {"x": "not-a-key"}, "schema_violation", 422),
        (jwk | {"kid": bpjstk.signer.kid}, "id_conflict", 409),  # kids are never reused
        (jwk | {"kid": hub.signer.kid}, "id_conflict", 409),  # nor the hub's own
    ]:
        problem(await client.post(KEYS, headers=admin, json={"jwk": bad, "reason": "x"}),
                status, code)
    assert (await client.post(KEYS, headers=admin, json={"jwk": jwk, "reason": "x"})
            ).status_code == 201
    problem(await client.post(KEYS, headers=admin, json={"jwk": jwk, "reason": "x"}),
            409, "id_conflict")
    problem(await client.post("/admin/v1/partners/XX-NOPE/keys", headers=admin,
                              json={"jwk": jwk, "reason": "x"}), 404, "not_found")
    problem(await client.post(f"{KEYS}/nope/activate", headers=admin, json={"reason": "x"}),
            404, "not_found")


async def test_only_admins_manage_keys(client, as_) -> None:
    _, jwk = _successor()
    for role in ("viewer", "operator", "approver", "auditor"):
        headers = as_("eve", role)
        problem(await client.get(KEYS, headers=headers), 403, "forbidden")
        problem(await client.post(KEYS, headers=headers, json={"jwk": jwk, "reason": "x"}),
                403, "forbidden")


async def test_a_second_process_learns_a_rotation_within_its_cache(hub: Hub, client, as_,
                                                                   clock) -> None:
    """Another process's ring (its own PartnerKeys) sees an added key after its ttl."""
    from gateway.messages.partner_keys import PartnerKeys

    ticks = [0.0]
    other = PartnerKeys(hub.uow, hub.registry.keys, ttl=2.0, monotonic=lambda: ticks[0])
    assert (await other.ring()).get("bpjstk-2027") is None
    _, jwk = _successor()
    r = await client.post(KEYS, headers=as_("ada", "admin"), json={"jwk": jwk, "reason": "x"})
    assert r.status_code == 201
    ticks[0] = 1.0
    assert (await other.ring()).get("bpjstk-2027") is None  # cached
    ticks[0] = 2.0
    assert (await other.ring()).get("bpjstk-2027") is not None


async def test_the_jwks_states_how_long_it_may_be_cached(client, hub: Hub) -> None:
    r = await client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    max_age = hub.settings.jwks_max_age_seconds
    assert r.headers["cache-control"] == f"public, max-age={max_age}"
    assert max_age < hub.settings.hub_key_lead_minutes * 60  # the cache rule partners rely on
    assert [k["kid"] for k in r.json()["keys"]] == [hub.signer.kid]


async def test_a_suspended_partners_key_is_retired_at_once(client, as_, bpjstk, clock) -> None:
    """A compromised key: the partner is suspended, so no overlap is owed to its traffic."""
    admin = as_("ada", "admin")
    problem(await client.post(f"{KEYS}/{bpjstk.signer.kid}/retire", headers=admin,
                              json={"reason": "compromised"}), 409, "state_conflict")
    r = await client.post("/admin/v1/partners/ID-BPJSTK/suspend", headers=as_("olga", "operator"),
                          json={"reason": "key compromised"})
    assert r.status_code == 200, r.text
    r = await client.post(f"{KEYS}/{bpjstk.signer.kid}/retire", headers=admin,
                          json={"reason": "compromised"})
    assert r.status_code == 201 and r.json()["preview"]["partner_suspended"], r.text
    r = await client.post(f"/admin/v1/proposals/{r.json()['id']}/approve",
                          headers=as_("carol", "approver"))
    assert r.status_code == 200 and r.json()["state"] == "executed", r.text
    listed = (await client.get(KEYS, headers=admin)).json()["keys"]
    assert [k["state"] for k in listed] == ["retired"]


async def test_evidence_verify_checks_signatures_with_the_keys_rotated_in(
        hub: Hub, client, as_, bpjstk, clock) -> None:
    """GET /admin/v1/evidence/verify?signatures=true verifies a message signed by a key that
    only the admin API's rotation knows (not the partners file), as `gateway audit verify`
    does: an on-demand verify must not call a rotated partner's records unverifiable."""
    admin = as_("ada", "admin")
    new_partner, jwk = _successor()
    r = await client.post(KEYS, headers=admin, json={"jwk": jwk, "reason": "BPJSTK 2027 key"})
    assert r.status_code == 201, r.text
    assert (await _send(client, new_partner, clock)).status_code == 202
    assert (await _send(client, bpjstk, clock)).status_code == 202
    while await chain_pending(hub.uow, full_sweep=True, clock=hub.clock):
        pass
    got = await client.get("/admin/v1/evidence/verify", headers=as_("audrey", "auditor"),
                           params={"settle_minutes": 0, "signatures": "true"})
    assert got.status_code == 200, got.text
    report = got.json()
    assert report["ok"] is True, report
    assert report["signatures"]["unverifiable"] == 0, report["signatures"]
    assert report["signatures"]["checked"] >= 4  # two messages, each signed and receipted
