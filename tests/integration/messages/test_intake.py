"""POST /v1/messages and GET /v1/receipts through the real app on a real database."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from gateway.composition import Hub
from gateway.protocol.signing import KeyRing, verify_detached
from gateway.storage.tables import messages, outbox
from tests.fixtures import FIXTURES_DIR
from tests.support.partners import NOW, TestPartner, claim_payload

pytestmark = pytest.mark.anyio


def hub_ring(hub: Hub) -> KeyRing:
    ring = KeyRing()
    ring.add_keyset("MY-PERKESO", hub.signer.jwks())
    return ring


async def post(client: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/v1/messages", content=body, headers=headers)


def problem(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    data = resp.json()
    assert data["code"] == code
    assert data["type"].endswith("/" + code)
    assert data["status"] == status
    return data


async def test_accepts_and_signs_receipt(client, hub, bpjstk: TestPartner) -> None:
    env = bpjstk.envelope()
    body, headers = bpjstk.signed(env)
    resp = await post(client, body, headers)
    assert resp.status_code == 202, resp.text
    signed = verify_detached(resp.content, resp.headers["X-JWS-Signature"], hub_ring(hub))
    assert signed.party == "MY-PERKESO"
    receipt = resp.json()
    assert receipt["message_id"] == env["id"]
    assert receipt["sender"] == "ID-BPJSTK"
    assert receipt["status"] == "accepted"
    assert receipt["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert receipt["received_at"] == "2026-11-21T08:20:00.000Z"
    async with hub.engine.connect() as conn:
        row = (await conn.execute(select(messages))).one()
        assert row.wire == body and row.signature == headers["X-JWS-Signature"]
        assert row.kid == "ID-BPJSTK-dev-1" and row.receipt == resp.content
        queued = (await conn.execute(select(outbox))).one()
        assert queued.kind == "process_inbound" and queued.ref == str(row.pk)


async def test_duplicate_and_conflict(client, hub, bpjstk: TestPartner) -> None:
    env = bpjstk.envelope()
    body, headers = bpjstk.signed(env)
    first = await post(client, body, headers)
    again = await post(client, body, headers)
    assert first.status_code == 202 and again.status_code == 200
    dup = again.json()
    assert dup["status"] == "duplicate"
    assert {k: v for k, v in dup.items() if k != "status"} == {
        k: v for k, v in first.json().items() if k != "status"}
    verify_detached(again.content, again.headers["X-JWS-Signature"], hub_ring(hub))
    changed = dict(env, correlation_id="OTHER")
    body2, headers2 = bpjstk.signed(changed)
    data = problem(await post(client, body2, headers2), 409, "id_conflict")
    assert data["message_id"] == env["id"]
    async with hub.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(messages))).scalar() == 1
        assert (await conn.execute(select(func.count()).select_from(outbox))).scalar() == 1


async def test_duplicate_recognised_after_it_went_stale(client, hub, clock, bpjstk) -> None:
    body, headers = bpjstk.signed(bpjstk.envelope())
    assert (await post(client, body, headers)).status_code == 202
    clock.now = NOW + timedelta(days=3)
    assert (await post(client, body, headers)).json()["status"] == "duplicate"


async def test_es256_key(client, hub) -> None:
    """A partner whose key set holds an ES256 key (rotation to a second key included)."""
    from gateway.protocol.signing import Signer, generate_private_jwk, public_jwk

    jwk = generate_private_jwk("ID-BPJSTK-es-2", "ES256")
    hub.registry.keys.add_keyset("ID-BPJSTK", {"keys": [public_jwk(jwk)]})
    partner = TestPartner("ID-BPJSTK", Signer("ID-BPJSTK", [jwk]))
    body, headers = partner.signed(partner.envelope())
    assert headers["X-JWS-Signature"].startswith("eyJhbGciOiJFUzI1NiI")
    resp = await post(client, body, headers)
    assert resp.status_code == 202, resp.text


async def test_receipt_fetched_again_byte_for_byte(client, bpjstk, instance: Path) -> None:
    env = bpjstk.envelope()
    body, headers = bpjstk.signed(env)
    first = await post(client, body, headers)
    got = await client.get(f"/v1/receipts/{env['id']}", headers=bpjstk.token())
    assert got.status_code == 200
    assert got.content == first.content
    assert got.headers["X-JWS-Signature"] == first.headers["X-JWS-Signature"]
    other = TestPartner.from_registry(instance / "partners.toml", "BD-WEWB")
    problem(await client.get(f"/v1/receipts/{env['id']}", headers=other.token()), 404,
            "not_found")


async def test_bearer_token_rules(client, bpjstk) -> None:
    env = bpjstk.envelope()
    body, headers = bpjstk.signed(env)
    await post(client, body, headers)
    url = f"/v1/receipts/{env['id']}"
    token = bpjstk.token()
    assert (await client.get(url, headers=token)).status_code == 200
    problem(await client.get(url, headers=token), 401, "token_replayed")
    problem(await client.get(url), 401, "token_invalid")
    problem(await client.get(url, headers={"Authorization": "Bearer abc.def.ghi"}), 401,
            "token_invalid")
    stale = bpjstk.token(now=NOW - timedelta(hours=1))
    problem(await client.get(url, headers=stale), 401, "token_invalid")
    long = {"Authorization": "Bearer " + bpjstk.signer.token("MY-PERKESO", 600,
                                                             now=NOW.timestamp())}
    problem(await client.get(url, headers=long), 401, "token_invalid")


async def test_signature_problems(client, bpjstk: TestPartner) -> None:
    body, headers = bpjstk.signed(bpjstk.envelope())
    problem(await post(client, body, {"Content-Type": "application/json"}), 401,
            "signature_missing")
    problem(await post(client, body + b" ", headers), 401, "signature_invalid")
    bad_kid = dict(headers)
    protected = base64.urlsafe_b64encode(b'{"alg":"EdDSA","kid":"NOPE-1"}').rstrip(b"=").decode()
    bad_kid["X-JWS-Signature"] = protected + ".." + headers["X-JWS-Signature"].split("..")[1]
    problem(await post(client, body, bad_kid), 401, "unknown_key")
    none = dict(headers)
    none["X-JWS-Signature"] = base64.urlsafe_b64encode(
        b'{"alg":"none","kid":"ID-BPJSTK-dev-1"}').rstrip(b"=").decode() + ".."
    problem(await post(client, body, none), 401, "signature_invalid")
    jku = dict(headers)
    jku["X-JWS-Signature"] = base64.urlsafe_b64encode(
        b'{"alg":"EdDSA","kid":"ID-BPJSTK-dev-1","jku":"https://evil"}').rstrip(b"=").decode() \
        + ".." + headers["X-JWS-Signature"].split("..")[1]
    problem(await post(client, body, jku), 401, "signature_invalid")


async def test_sender_and_recipient(client, bpjstk: TestPartner) -> None:
    body, headers = bpjstk.signed(bpjstk.envelope(sender="BD-WEWB"))
    problem(await post(client, body, headers), 403, "sender_mismatch")
    body, headers = bpjstk.signed(bpjstk.envelope(recipient="MY-OTHER"))
    problem(await post(client, body, headers), 403, "recipient_unknown")


async def test_validation_problems(client, bpjstk: TestPartner) -> None:
    body = b'{"id": '
    problem(await post(client, body, {"X-JWS-Signature": bpjstk.sign(body),
                                      "Content-Type": "application/json"}), 400,
            "malformed_json")
    env = bpjstk.envelope()
    env["payload"]["worker"]["favourite_colour"] = "blue"
    body, headers = bpjstk.signed(env)
    data = problem(await post(client, body, headers), 422, "schema_violation")
    assert "payload.worker.favourite_colour" in data["detail"]
    assert data["message_id"] == env["id"]
    env = bpjstk.envelope()
    del env["payload"]["worker"]["passport_no"], env["payload"]["worker"]["national_id"]
    body, headers = bpjstk.signed(env)
    data = problem(await post(client, body, headers), 422, "schema_violation")
    assert "at least one of passport_no, national_id, socso_no" in data["detail"]
    env = bpjstk.envelope()
    env["payload"]["worker"]["national_id"]["value"] = "3201149903910002"
    body, headers = bpjstk.signed(env)
    data = problem(await post(client, body, headers), 422, "schema_violation")
    assert "ID-NIK" in data["detail"]
    body, headers = bpjstk.signed(bpjstk.envelope(payload=claim_payload(
        payout={"method": "ewallet", "provider": "x", "account": "1", "account_name": "A",
                "amount": 1.5})))
    problem(await post(client, body, headers), 422, "schema_violation")
    body, headers = bpjstk.signed(bpjstk.envelope(type_="claim.explode"))
    problem(await post(client, body, headers), 422, "unknown_type")
    body, headers = bpjstk.signed(bpjstk.envelope(type_="claim.status"))
    problem(await post(client, body, headers), 422, "unknown_type")
    body, headers = bpjstk.signed(bpjstk.envelope(version=2))
    problem(await post(client, body, headers), 422, "schema_violation")
    body, headers = bpjstk.signed(bpjstk.envelope(sent_at=NOW - timedelta(hours=25)))
    problem(await post(client, body, headers), 422, "stale_message")
    body, headers = bpjstk.signed(bpjstk.envelope(sent_at=NOW + timedelta(minutes=6)))
    problem(await post(client, body, headers), 422, "clock_skew")
    env = bpjstk.envelope()
    env["sent_at"] = "2026-11-21T15:20:00+07:00"  # the same instant in Jakarta time
    body, headers = bpjstk.signed(env)
    assert (await post(client, body, headers)).status_code == 202


async def test_size_and_media_type(client, bpjstk: TestPartner) -> None:
    body, headers = bpjstk.signed(bpjstk.envelope())
    problem(await post(client, body, {**headers, "Content-Type": "text/plain"}), 415,
            "unsupported_media_type")
    big = b"{" + b" " * (1024 * 1024) + b"}"
    problem(await post(client, big, {**headers}), 413, "payload_too_large")


async def test_suspended_partner_and_allowed_types(hub, client, bpjstk, instance: Path) -> None:
    from dataclasses import replace

    partner = hub.registry.get("ID-BPJSTK")
    hub.registry._partners["ID-BPJSTK"] = replace(partner, suspended=True)
    body, headers = bpjstk.signed(bpjstk.envelope())
    problem(await post(client, body, headers), 403, "partner_suspended")
    problem(await client.get("/v1/receipts/x", headers=bpjstk.token()), 403, "partner_suspended")
    hub.registry._partners["ID-BPJSTK"] = replace(
        partner, allowed_types=frozenset({"document.deliver"}))
    data = problem(await post(client, body, headers), 422, "unknown_type")
    assert "not configured to send claim.notify" in data["detail"]


async def test_rate_limit(hub, client, bpjstk) -> None:
    from dataclasses import replace

    partner = hub.registry.get("ID-BPJSTK")
    hub.registry._partners["ID-BPJSTK"] = replace(partner, rate_limit_per_minute=2)
    for _ in range(2):
        body, headers = bpjstk.signed(bpjstk.envelope())
        assert (await post(client, body, headers)).status_code == 202
    body, headers = bpjstk.signed(bpjstk.envelope())
    resp = await post(client, body, headers)
    problem(resp, 429, "rate_limited")
    assert int(resp.headers["Retry-After"]) >= 1


async def test_concurrent_duplicates_yield_one_202(hub, bpjstk, settings) -> None:
    """Many connections at once with the same message: exactly one 202, the rest 200."""
    from gateway.app import create_app

    app = create_app(hub=hub, background_jobs=False)
    body, headers = bpjstk.signed(bpjstk.envelope())

    async def one() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
            return (await c.post("/v1/messages", content=body, headers=headers)).status_code

    codes = await asyncio.gather(*[one() for _ in range(20)])
    assert sorted(codes) == [200] * 19 + [202]


async def test_jwks_and_openapi(client, hub) -> None:
    jwks = (await client.get("/.well-known/jwks.json")).json()
    assert jwks == hub.signer.jwks() and all("d" not in k for k in jwks["keys"])
    spec = (await client.get("/openapi.json")).json()
    assert "/v1/messages" in spec["paths"]


async def test_unexpected_error_is_a_500_problem_without_internals(hub, bpjstk) -> None:
    from gateway.app import create_app

    async def boom(*_a, **_k):
        raise RuntimeError("secret internals")

    hub.intake.receive = boom  # type: ignore[method-assign]
    app = create_app(hub=hub, background_jobs=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
        body, headers = bpjstk.signed(bpjstk.envelope())
        resp = await c.post("/v1/messages", content=body, headers=headers)
    data = problem(resp, 500, "internal_error")
    assert "secret" not in resp.text and data["status"] == 500


async def test_vector_bodies_through_the_app(client, hub, clock, instance: Path) -> None:
    """The shared vector's signature is accepted by the real app (with the vector's key)."""
    vectors = json.loads((FIXTURES_DIR / "vectors" / "jws-detached.json").read_text())["vectors"]
    vec = vectors[0]
    hub.registry.keys._by_kid.pop("ID-BPJSTK-dev-1")
    hub.registry.keys.add_keyset("ID-BPJSTK", {"keys": [vec["jwk"]]})
    body = base64.urlsafe_b64decode(vec["body_b64"] + "==")
    resp = await post(client, body, {"X-JWS-Signature": vec["x_jws_signature"],
                                     "Content-Type": "application/json"})
    # The signature verifies; the vector's payload is a signature fixture, not a full claim:
    # the hub then names the protocol's required fields it lacks.
    data = problem(resp, 422, "schema_violation")
    assert "payload.incident" in data["detail"]
    tampered = next(v for v in vectors if v["name"] == "ed25519-tampered-body")
    resp = await post(client, base64.urlsafe_b64decode(tampered["body_b64"] + "=="),
                      {"X-JWS-Signature": tampered["x_jws_signature"],
                       "Content-Type": "application/json"})
    problem(resp, 401, "signature_invalid")
    assert orjson.loads(body)["sent_at"] == "2026-11-21T08:15:30Z"
