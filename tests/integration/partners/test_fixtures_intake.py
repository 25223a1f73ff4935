"""Recorded partner fixtures through the real app on real databases: accepted or refused,
and every refusal names the field and what is wrong with it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import select

from gateway.composition import Hub
from gateway.storage.tables import batch_lines, messages, partner_batches
from tests.fixtures import FIXTURES_DIR
from tests.support.partners import TestPartner

pytestmark = pytest.mark.anyio

FIXTURES = FIXTURES_DIR / "partners"
MEDIA = {"json": "application/json", "jsonl": "application/x-ndjson", "xml": "application/xml"}
PARTNERS = ["ID-BPJSTK", "MM-SSB", "NP-FEB", "PK-MOPHRD", "BD-WEWB"]


def _partner(instance: Path, pid: str) -> TestPartner:
    return TestPartner.from_registry(instance / "partners.toml", pid)


async def _post(client: httpx.AsyncClient, partner: TestPartner, path: Path) -> httpx.Response:
    body = path.read_bytes()
    return await client.post("/v1/messages", content=body, headers={
        "X-JWS-Signature": partner.sign(body), "Content-Type": MEDIA[path.suffix[1:]]})


@pytest.mark.parametrize("partner_id", PARTNERS)
async def test_valid_inbound_fixtures_are_accepted(client, hub: Hub, instance: Path,
                                                   partner_id: str) -> None:
    partner = _partner(instance, partner_id)
    files = sorted((FIXTURES / partner_id / "valid").glob("in.*"))
    files = [f for f in files if "_native" not in f.name]  # natives reuse the same ids
    for f in files:
        resp = await _post(client, partner, f)
        assert resp.status_code in (200, 202), (f.name, resp.text)
        if partner_id == "MM-SSB":
            line = orjson.loads(resp.content.splitlines()[0])
            assert line["status"] == "accepted", (f.name, line)
    async with hub.engine.connect() as conn:
        rows = (await conn.execute(select(messages.c.wire, messages.c.canonical)
                                   .where(messages.c.sender == partner_id))).all()
        assert len(rows) == len(files)
        wires = {f.read_bytes().rstrip(b"\n") for f in files}
        assert {r.wire for r in rows} == wires  # the original bytes, as received
        if partner_id in ("ID-BPJSTK", "BD-WEWB"):
            assert all(r.canonical is None for r in rows)  # PX/1: wire is canonical
        else:
            assert all(r.canonical is not None for r in rows)
        if partner_id == "MM-SSB":  # the batch as signed, and which line became which row
            assert len((await conn.execute(select(partner_batches))).all()) == len(files)
            assert {r.status for r in (await conn.execute(select(batch_lines))).all()} == \
                {"accepted"}


@pytest.mark.parametrize("partner_id", PARTNERS)
async def test_invalid_fixtures_are_refused_with_the_field(client, instance: Path,
                                                           partner_id: str) -> None:
    partner = _partner(instance, partner_id)
    expected = json.loads((FIXTURES / partner_id / "invalid" / "expected.json").read_text())
    for name, (code, needle) in expected.items():
        resp = await _post(client, partner, FIXTURES / partner_id / "invalid" / name)
        if partner_id == "MM-SSB":
            assert resp.status_code == 200, resp.text
            problem = orjson.loads(resp.content.splitlines()[0])["problem"]
        else:
            assert resp.status_code in (400, 422), (name, resp.text)
            assert resp.headers["content-type"] == "application/problem+json"
            problem = resp.json()
        assert problem["code"] == code, (name, problem)
        assert needle in problem["detail"], (name, problem["detail"])
