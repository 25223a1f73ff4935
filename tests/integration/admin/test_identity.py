"""Who may call /admin/v1: only the identity provider's tokens, with roles; every attempt,
refused ones included, is on the audit trail."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gateway.admin.auth import DEV_AUDIENCE, DEV_ISSUER
from gateway.protocol.signing import generate_private_jwk
from tests.integration.admin.conftest import forge, problem, trail
from tests.support.partners import TestPartner

pytestmark = pytest.mark.anyio


async def test_partner_and_service_credentials_get_401(hub, client, auth, bpjstk: TestPartner,
                                                       as_) -> None:
    for headers in ({}, auth, bpjstk.token(), {"Authorization": "Basic YWRtaW46YWRtaW4="}):
        problem(await client.get("/admin/v1/messages", headers=headers), 401, "token_invalid")
    records = await trail(hub)
    assert len(records) == 4
    assert {(r.outcome, r.status, r.actor, r.action) for r in records} == {
        ("denied", 401, "-", "messages.search")}


async def test_tokens_of_another_issuer_audience_expired_or_forged_get_401(
        hub, client, dev_key: dict[str, Any]) -> None:
    stranger = generate_private_jwk(dev_key["kid"], "EdDSA")  # same kid, another key
    t = int(time.time())
    bad = [
        forge(dev_key, iss="https://idp.example/other"),
        forge(dev_key, aud="another-api"),
        forge(dev_key, iat=t - 3600, exp=t - 600),
        forge(dev_key, exp=None),
        forge(stranger),
        forge(dev_key)[:-4] + "AAAA",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0.",
        "not-a-jwt",
    ]
    for token in bad:
        r = await client.get("/admin/v1/outbox", headers={"Authorization": f"Bearer {token}"})
        problem(r, 401, "token_invalid")
    assert [r.outcome for r in await trail(hub)] == ["denied"] * len(bad)
    # The same key with the right claims passes: the refusals above are the claims'.
    good = forge(dev_key, iss=DEV_ISSUER, aud=DEV_AUDIENCE)
    r = await client.get("/admin/v1/outbox", headers={"Authorization": f"Bearer {good}"})
    assert r.status_code == 200, r.text


async def test_a_token_without_admin_roles_is_403(hub, client, dev_key) -> None:
    token = forge(dev_key, roles=["superuser"])
    r = await client.get("/admin/v1/outbox", headers={"Authorization": f"Bearer {token}"})
    problem(r, 403, "forbidden")
    [rec] = await trail(hub)
    assert rec.outcome == "denied" and rec.status == 403


async def test_roles_are_enforced_per_endpoint(hub, client, as_) -> None:
    viewer = as_("vera", "viewer")
    assert (await client.get("/admin/v1/partners", headers=viewer)).status_code == 200
    problem(await client.get("/admin/v1/audit", headers=viewer), 403, "forbidden")
    problem(await client.post("/admin/v1/partners/ID-BPJSTK/suspend", headers=viewer,
                              json={"reason": "x"}), 403, "forbidden")
    problem(await client.post("/admin/v1/proposals", headers=viewer, json={
        "action": "replay", "task_ids": [1], "reason": "retry"}), 403, "forbidden")
    problem(await client.post("/admin/v1/proposals/1/approve", headers=as_("olga", "operator")),
            403, "forbidden")
    admin = as_("ada", "admin")  # partner keys, not the operator's acts (docs/admin.md)
    problem(await client.post("/admin/v1/partners/ID-BPJSTK/suspend", headers=admin,
                              json={"reason": "x"}), 403, "forbidden")
    problem(await client.post("/admin/v1/breakers/ID-BPJSTK", headers=admin,
                              json={"state": "open", "reason": "x"}), 403, "forbidden")
    problem(await client.post("/admin/v1/proposals", headers=admin, json={
        "action": "replay", "task_ids": [1], "reason": "retry"}), 403, "forbidden")
    records = await trail(hub)
    assert [(r.actor, r.action, r.outcome) for r in records] == [
        ("vera", "partners.list", "ok"), ("vera", "audit.list", "denied"),
        ("vera", "partners.suspend", "denied"), ("vera", "proposals.create", "denied"),
        ("olga", "proposals.approve", "denied"), ("ada", "partners.suspend", "denied"),
        ("ada", "breakers.set", "denied"), ("ada", "proposals.create", "denied")]
    assert records[0].roles == "viewer" and records[0].client_ip == "127.0.0.1"


async def test_openapi_describes_the_admin_api(client) -> None:
    spec = (await client.get("/openapi.json")).json()
    admin = {p: ops for p, ops in spec["paths"].items() if p.startswith("/admin/v1/")}
    assert len(admin) >= 19
    assert "adminBearer" in spec["components"]["securitySchemes"]
    for path, ops in admin.items():
        for method, op in ops.items():
            assert op["summary"], (method, path)
            assert op["security"] == [{"adminBearer": []}], (method, path)
            assert op["responses"]["401"]["content"]["application/problem+json"]
            if method in ("post", "patch") and not path.endswith(("/submit", "/approve")):
                assert "requestBody" in op, (method, path)
    create = admin["/admin/v1/proposals"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]
    assert "ProposalOut" in str(create["responses"]["201"])
