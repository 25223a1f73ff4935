"""Issue 13, Bangladesh, through the real app (SQLite and PostgreSQL): a BD-WEWB claim whose
13-digit NID starts with one of the 64 district geocodes is accepted, one that does not is a
422 naming the field and the digits; 10- and 17-digit numbers are unaffected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.fixtures import FIXTURES_DIR
from tests.support.partners import TestPartner

pytestmark = pytest.mark.anyio

CLAIM = FIXTURES_DIR / "partners" / "BD-WEWB" / "valid" / "in.claim.notify.json"


def _claim(worker_nid: str, n: int) -> bytes:
    data: dict[str, Any] = orjson.loads(CLAIM.read_bytes())
    data["id"] = f"0193a3c4-6f1e-7c2a-9b1d-2f4e5a6b{n:04x}"
    data["payload"]["worker"]["national_id"]["value"] = worker_nid
    return orjson.dumps(data)


async def _post(client: httpx.AsyncClient, instance: Path, body: bytes) -> httpx.Response:
    partner = TestPartner.from_registry(instance / "partners.toml", "BD-WEWB")
    return await client.post("/v1/messages", content=body, headers={
        "X-JWS-Signature": partner.sign(body), "Content-Type": "application/json"})


@pytest.mark.parametrize(
    "nid",
    ["0112345678901", "2612345678901", "9312345678901", "9412345678901",  # Bagerhat .. Thakurgaon
     "3328604015821",  # a published example (Gazipur)
     "0012345678", "19900012345678901"],  # smart card; 17 digits: birth year only
)
async def test_valid_bd_nids_are_accepted(client, instance: Path, nid: str) -> None:
    resp = await _post(client, instance, _claim(nid, 1))
    assert resp.status_code == 202, resp.text


@pytest.mark.parametrize("code", ["00", "02", "99"])
async def test_13_digit_nid_outside_the_districts_is_a_422_naming_the_field(
        client, instance: Path, code: str) -> None:
    resp = await _post(client, instance, _claim(f"{code}12345678901", 2))
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert problem["code"] == "schema_violation"
    assert problem["detail"].startswith("payload.worker.national_id: ")
    assert f"BD-NID district code {code!r} (digits 1-2 of 13)" in problem["detail"]
