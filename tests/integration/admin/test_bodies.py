"""Request bodies of the admin API and the back office are read under the same strict rules
(gateway.web.jsonbody): a key twice, a NUL, bytes that are not UTF-8 or not JSON, a body
that is not application/json, one streamed past the limit and a value of the wrong JSON type
are each refused with their own problem, recorded on the audit trail, and change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.composition import Hub
from gateway.storage.tables import admin_proposals, partner_suspensions
from tests.integration.admin.conftest import problem, trail

pytestmark = pytest.mark.anyio
JSON = {"Content-Type": "application/json"}


async def _stored(hub: Hub) -> tuple[int, int]:
    async with hub.engine.connect() as conn:
        return (len((await conn.execute(select(partner_suspensions))).all()),
                len((await conn.execute(select(admin_proposals))).all()))


@pytest.fixture
def operator(as_: Callable[..., dict[str, str]]) -> dict[str, str]:
    return as_("alice", "operator")


@pytest.mark.parametrize(("body", "status", "code", "says"), [
    (b'{"reason": "a", "reason": "b"}', 422, "schema_violation", "key 'reason' appears twice"),
    (b'{"reason": "r\\u0000x"}', 422, "schema_violation", "U+0000 is refused"),
    (b'{"reason": "\\u202eevil"}', 422, "schema_violation", "U+202E is refused"),
    ('{"reason": "caf\u00e9"}'.encode("latin-1"), 400, "malformed_json", "not UTF-8"),
    (b"hello", 400, "malformed_json", "not JSON"),
], ids=["key-twice", "nul", "bidi", "latin-1", "not-json"])
async def test_a_bad_body_is_its_own_problem_audited_and_stores_nothing(
        hub: Hub, client: httpx.AsyncClient, operator: dict[str, str], body: bytes,
        status: int, code: str, says: str) -> None:
    before = await _stored(hub)
    r = await client.post("/admin/v1/partners/PK-MOPHRD/suspend", content=body,
                          headers={**operator, **JSON})
    assert says in problem(r, status, code)["detail"]
    assert await _stored(hub) == before
    last = (await trail(hub))[-1]
    assert (last.action, last.outcome, last.status) == ("partners.suspend", "invalid", status)


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded"])
async def test_a_json_body_sent_as_another_media_type_is_415(
        hub: Hub, client: httpx.AsyncClient, operator: dict[str, str],
        backoffice_token: str, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    body = b'{"reason": "maintenance"}'
    r = await client.post("/admin/v1/partners/PK-MOPHRD/suspend", content=body,
                          headers={**operator, **headers})
    problem(r, 415, "unsupported_media_type")
    r = await client.post("/v1/backoffice/payments/PAY-X/cancel", content=body, headers={
        "Authorization": f"Bearer {backoffice_token}", **headers})
    problem(r, 415, "unsupported_media_type")
    assert await _stored(hub) == (0, 0)


async def test_a_body_streamed_past_the_limit_is_413(
        hub: Hub, client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"reason": "'
        for _ in range(hub.settings.max_body_bytes // 65536 + 1):
            yield b"x" * 65536
        yield b'"}'
    r = await client.post("/admin/v1/partners/PK-MOPHRD/suspend", content=chunks(),
                          headers={**operator, **JSON})
    problem(r, 413, "payload_too_large")
    assert (await trail(hub))[-1].status == 413
    assert await _stored(hub) == (0, 0)


@pytest.mark.parametrize(("field", "value"), [
    ("case_id", True), ("case_id", "5"), ("case_id", 5.0), ("draft", "yes"), ("draft", 1),
    ("expires_in_hours", True)])
async def test_a_value_of_the_wrong_json_type_is_refused_not_coerced(
        hub: Hub, client: httpx.AsyncClient, operator: dict[str, str], field: str,
        value: Any) -> None:
    body = {"action": "resolve_recon_case", "reason": "r", "case_id": 5,
            "outcome": "explained", "note": "n", field: value}
    r = await client.post("/admin/v1/proposals", json=body, headers=operator)
    assert problem(r, 422, "schema_violation")["detail"].split(":")[0].endswith(field)
    assert await _stored(hub) == (0, 0)


async def test_a_date_time_field_still_takes_its_json_string(
        hub: Hub, client: httpx.AsyncClient, as_: Callable[..., dict[str, str]]) -> None:
    r = await client.post("/admin/v1/partners/PK-MOPHRD/keys", headers=as_("erin", "admin"),
                          json={"jwk": {"kty": "OKP", "crv": "Ed25519", "kid": "K-1",
                                        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
                                "reason": "rotation", "expires_at": "2027-12-01T00:00:00Z"})
    assert r.status_code == 201, r.text
    assert r.json()["expires_at"].startswith("2027-12-01")
