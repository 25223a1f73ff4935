"""A method a path does not take is 405 method_not_allowed with an Allow header naming the
methods it does take (RFC 9110 §15.5.6), on the partner, back-office and admin APIs alike."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("method, path, allowed", [
    ("DELETE", "/v1/backoffice/payments", "GET, POST"),
    ("PUT", "/v1/messages", "POST"),
    ("POST", "/.well-known/jwks.json", "GET"),
    ("POST", "/livez", "GET"),
    ("DELETE", "/admin/v1/partners/ID-BPJSTK/suspend", "POST"),
    ("POST", "/v1/backoffice/reconciliation/runs", "GET"),
    # A literal path is not the parameterised one beside it (GET /pensions/{id}).
    ("OPTIONS", "/v1/backoffice/pensions/run", "POST"),
])
async def test_a_method_the_path_does_not_take_names_those_it_does(
        client: httpx.AsyncClient, method: str, path: str, allowed: str) -> None:
    r = await client.request(method, path)
    assert r.status_code == 405, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "method_not_allowed"
    assert r.headers["allow"] == allowed
