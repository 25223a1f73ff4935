"""Hostile input at the HTTP edge is refused cleanly, on SQLite and PostgreSQL (issue 9,
items 3-7): problem+json with a stable code naming the field, never a 500, nothing stored."""

from __future__ import annotations

import copy
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from joserfc import jwt
from sqlalchemy import func, select

from gateway.composition import Hub
from gateway.protocol.keys import load_signer
from gateway.runtime.bootstrap import dev_key_path
from gateway.storage.tables import messages
from tests.support.fakes import FakeRail
from tests.support.partners import NOW, TestPartner
from tests.support.payments import payment_body

pytestmark = pytest.mark.anyio


def _problem(resp: httpx.Response, status: int, code: str, needle: str = "") -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == code, resp.json()
    assert needle in resp.json()["detail"], resp.json()["detail"]


async def _stored(hub: Hub) -> int:
    async with hub.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(messages))).scalar_one())


def _nested(depth: int) -> bytes:
    return b'{"x":' * depth + b'"deep"' + b"}" * depth


def _with_deep(value: dict[str, Any], path: tuple[str, ...], depth: int = 300) -> bytes:
    """``value`` as JSON with the member at ``path`` nested ``depth`` objects deep."""
    doc = copy.deepcopy(value)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = "@@DEEP@@"
    return orjson.dumps(doc).replace(b'"@@DEEP@@"', _nested(depth))


# -- item 3: NUL bytes --------------------------------------------------------------------------

async def test_nul_in_path_and_query_is_422_not_500(client: httpx.AsyncClient,
                                                    bpjstk: TestPartner,
                                                    backoffice_token: str) -> None:
    bo = {"Authorization": f"Bearer {backoffice_token}"}
    _problem(await client.get("/v1/receipts/%00", headers=bpjstk.token()), 422,
             "schema_violation", "path")
    _problem(await client.get("/v1/tracking/a%00b", headers=bpjstk.token()), 422,
             "schema_violation", "U+0000")
    _problem(await client.get("/v1/backoffice/payments/%00", headers=bo), 422,
             "schema_violation", "path")
    _problem(await client.get("/v1/backoffice/payments?claim_ref=%00", headers=bo), 422,
             "schema_violation", "query.claim_ref")


async def test_nul_in_correlation_id_is_refused_and_not_stored(
        client: httpx.AsyncClient, hub: Hub, bpjstk: TestPartner) -> None:
    body, headers = bpjstk.signed(bpjstk.envelope(correlation_id="KLM\x00-1"))
    _problem(await client.post("/v1/messages", content=body, headers=headers), 422,
             "schema_violation", "correlation_id")
    assert await _stored(hub) == 0


def _token(partner: TestPartner, **over: Any) -> dict[str, str]:
    iat = int(NOW.timestamp())
    claims = {"iss": partner.id, "sub": partner.id, "aud": "MY-PERKESO", "iat": iat,
              "exp": iat + 120, "jti": str(uuid.uuid4()), **over}
    signer = partner.signer
    token = jwt.encode({"alg": signer.alg, "kid": signer.kid, "typ": "JWT"}, claims,
                       signer._current()[2], algorithms=[signer.alg])
    return {"Authorization": f"Bearer {token}"}


async def test_nul_in_jti_and_future_nbf_are_token_invalid(
        client: httpx.AsyncClient, bpjstk: TestPartner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: NOW.timestamp())
    _problem(await client.get("/v1/tracking/KLM-1", headers=_token(bpjstk, jti="abc\x00defgh")),
             401, "token_invalid", "jti")
    _problem(await client.get("/v1/tracking/KLM-1", headers=_token(
        bpjstk, nbf=int(NOW.timestamp()) + 3600)), 401, "token_invalid", "nbf")


# -- item 4: deep nesting -----------------------------------------------------------------------

async def test_deep_px1_envelope_is_422(client: httpx.AsyncClient, bpjstk: TestPartner) -> None:
    body = _with_deep(bpjstk.envelope(), ("payload", "worker", "name"))
    _problem(await client.post("/v1/messages", content=body, headers={
        "X-JWS-Signature": bpjstk.sign(body), "Content-Type": "application/json"}), 422,
        "schema_violation", "nested deeper than 32")


def _signer(instance: Path, pid: str) -> TestPartner:
    return TestPartner(pid, load_signer(dev_key_path(instance / "partners.toml", pid), pid))


async def test_deep_pk_mophrd_body_is_422(client: httpx.AsyncClient, instance: Path) -> None:
    pk = _signer(instance, "PK-MOPHRD")
    body = _with_deep({"header": {"messageId": str(uuid.uuid4())}, "body": {}}, ("body",))
    _problem(await client.post("/v1/messages", content=body, headers={
        "X-JWS-Signature": pk.sign(body), "Content-Type": "application/json"}), 422,
        "schema_violation", "nested deeper")


async def test_deep_mm_ssb_line_refused_alone_good_line_accepted(
        client: httpx.AsyncClient, instance: Path) -> None:
    from tests.fixtures import FIXTURES_DIR
    good = (FIXTURES_DIR / "partners/MM-SSB/valid/in.claim.notify.jsonl").read_bytes().strip()
    deep = _with_deep({"id": str(uuid.uuid4()), "payload": {}}, ("payload",))
    body = good + b"\n" + deep + b"\n"
    mm = _signer(instance, "MM-SSB")
    resp = await client.post("/v1/messages", content=body, headers={
        "X-JWS-Signature": mm.sign(body), "Content-Type": "application/x-ndjson"})
    assert resp.status_code == 200, resp.text
    lines = [orjson.loads(x) for x in resp.content.splitlines()]
    assert lines[0]["status"] == "accepted", lines[0]
    assert lines[1]["status"] == "refused"
    assert lines[1]["problem"]["code"] == "schema_violation"
    assert "nested deeper" in lines[1]["problem"]["detail"]


# -- item 5: integer overflow -------------------------------------------------------------------

async def test_integers_beyond_64_bits_are_422(client: httpx.AsyncClient,
                                               backoffice_token: str) -> None:
    bo = {"Authorization": f"Bearer {backoffice_token}"}
    _problem(await client.get(f"/v1/backoffice/payments?before={2**64}", headers=bo), 422,
             "schema_violation", "before")
    _problem(await client.post(f"/v1/backoffice/dead-letters/{2**64}/retry", headers=bo), 422,
             "schema_violation", "task_id")


# -- item 6: sizes before authentication, authentication before the body -------------------------

async def test_oversized_back_office_body_is_413_before_auth(client: httpx.AsyncClient) -> None:
    big = b"x" * (1_048_576 + 1)
    _problem(await client.post("/v1/backoffice/payments", content=big,
                               headers={"Content-Type": "application/json"}), 413,
             "payload_too_large")


async def test_unauthenticated_back_office_body_is_401_not_parsed(
        client: httpx.AsyncClient) -> None:
    _problem(await client.post("/v1/backoffice/payments", content=b"{not json",
                               headers={"Content-Type": "application/json"}), 401,
             "token_invalid")


async def test_streamed_body_over_the_limit_is_413(client: httpx.AsyncClient,
                                                  bpjstk: TestPartner) -> None:
    async def chunks() -> Any:
        for _ in range(40):
            yield b"x" * 65536
    _problem(await client.post("/v1/messages", content=chunks(), headers={
        "Content-Type": "application/json", "X-JWS-Signature": "a..b"}), 413,
        "payload_too_large")


async def test_too_large_callback_is_413_not_404(client: httpx.AsyncClient, hub: Hub) -> None:
    hub.payments.rails["fake"] = FakeRail()
    _problem(await client.post("/v1/rails/fake/callbacks", content=b"x" * 300_000),
             413, "payload_too_large")


async def test_oversized_headers_are_431(client: httpx.AsyncClient) -> None:
    _problem(await client.get("/healthz", headers={"X-Big": "a" * 20_000}), 431,
             "headers_too_large")


# -- item 7: accepted but wrong -----------------------------------------------------------------

async def test_duplicate_keys_in_envelope_refused(client: httpx.AsyncClient, hub: Hub,
                                                  bpjstk: TestPartner) -> None:
    env = bpjstk.envelope()
    raw = orjson.dumps(env)
    body = raw[:-1] + b',"id":"' + str(uuid.uuid4()).encode() + b'"}'
    _problem(await client.post("/v1/messages", content=body, headers={
        "X-JWS-Signature": bpjstk.sign(body), "Content-Type": "application/json"}), 422,
        "schema_violation", "'id' appears twice")
    assert await _stored(hub) == 0


async def test_duplicate_keys_in_back_office_body_refused(client: httpx.AsyncClient,
                                                          backoffice_token: str) -> None:
    raw = orjson.dumps(payment_body())
    body = raw[:-1] + b',"payment_id":"PAY-OTHER"}'
    _problem(await client.post("/v1/backoffice/payments", content=body, headers={
        "Authorization": f"Bearer {backoffice_token}", "Content-Type": "application/json"}),
        422, "schema_violation", "appears twice")


@pytest.mark.parametrize("version", [True, 1.0])
async def test_version_must_be_the_integer_1(client: httpx.AsyncClient, bpjstk: TestPartner,
                                             version: Any) -> None:
    body, headers = bpjstk.signed(bpjstk.envelope(version=version))
    _problem(await client.post("/v1/messages", content=body, headers=headers), 422,
             "schema_violation", "version")


async def test_datetime_where_a_date_is_required(client: httpx.AsyncClient,
                                                 bpjstk: TestPartner) -> None:
    env = bpjstk.envelope()
    env["payload"]["worker"]["date_of_birth"] = "1991-03-14T00:00:00"
    body, headers = bpjstk.signed(env)
    _problem(await client.post("/v1/messages", content=body, headers=headers), 422,
             "schema_violation", "payload.worker.date_of_birth")


async def test_second_signature_header_refused(client: httpx.AsyncClient,
                                               bpjstk: TestPartner) -> None:
    body, headers = bpjstk.signed(bpjstk.envelope())
    pairs = [("Content-Type", "application/json"),
             ("X-JWS-Signature", headers["X-JWS-Signature"]), ("X-JWS-Signature", "x..y")]
    _problem(await client.post("/v1/messages", content=body, headers=pairs), 401,
             "signature_invalid", "only once")


@pytest.mark.parametrize("bad", ["\x1b[31m", "\u202e", "\x7f", "a\nb"])
async def test_control_characters_in_names_refused(client: httpx.AsyncClient, hub: Hub,
                                                   bpjstk: TestPartner, bad: str) -> None:
    env = copy.deepcopy(bpjstk.envelope())
    env["payload"]["worker"]["name"] = f"Siti{bad}Rahayu"
    body, headers = bpjstk.signed(env)
    _problem(await client.post("/v1/messages", content=body, headers=headers), 422,
             "schema_violation", "worker.name")
    assert await _stored(hub) == 0


async def test_payment_for_an_unknown_partner_is_refused(client: httpx.AsyncClient, hub: Hub,
                                                         backoffice_token: str) -> None:
    hub.payments.rails["fake"] = FakeRail()
    bo = {"Authorization": f"Bearer {backoffice_token}"}
    _problem(await client.post("/v1/backoffice/payments", headers=bo,
                               json=payment_body(partner_id="XX-NOBODY")), 422,
             "schema_violation", "partner_id: 'XX-NOBODY'")
    resp = await client.get("/v1/backoffice/payments", headers=bo)
    assert resp.status_code == 200 and resp.json()["payments"] == [], resp.text


async def test_amount_beyond_64_bit_minor_units_is_422(client: httpx.AsyncClient, hub: Hub,
                                                       backoffice_token: str) -> None:
    hub.payments.rails["fake"] = FakeRail()
    bo = {"Authorization": f"Bearer {backoffice_token}"}
    body = payment_body(amount={"amount": "99999999999999999999.00", "currency": "MYR"})
    _problem(await client.post("/v1/backoffice/payments", headers=bo, json=body), 422,
             "schema_violation", "amount")


async def test_control_character_in_a_query_name_is_shown_escaped(
        client: httpx.AsyncClient, backoffice_token: str) -> None:
    _problem(await client.get("/v1/backoffice/payments?a%1bb=1",
                              headers={"Authorization": f"Bearer {backoffice_token}"}),
             422, "schema_violation", "query.a\\x1bb: control")
