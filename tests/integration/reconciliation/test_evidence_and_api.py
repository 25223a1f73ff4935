"""Reconciliation as evidence (the chain covers stored statements and run manifests) and the
back office's reconciliation lists through the real HTTP app."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from gateway.composition import Hub
from gateway.evidence.chain import chain_pending, verify_chain
from gateway.reconciliation.service import CHUNK, ReconciliationService
from gateway.storage.tables import evidence_chain, recon_runs, statement_blobs
from tests.support.recon import add_payment, line, record, statement

pytestmark = pytest.mark.anyio
DAY = date(2026, 12, 1)


async def _chain_all(hub: Hub) -> None:
    while await chain_pending(hub.uow, full_sweep=True, clock=hub.clock):
        pass


async def test_audit_verify_finds_a_flipped_byte_in_a_stored_statement_chunk(
        hub: Hub, recon: ReconciliationService) -> None:
    await add_payment(hub.uow, "P-1")
    # Over two chunks, so the tampered byte sits in the second.
    filler = [line(n, "1.00", kind="fee") for n in range(2, 2 + CHUNK // 200)]
    data = statement([record(), line(1, e2e="P-1"), *filler])
    assert len(data) > CHUNK
    await recon.run("fake", DAY, data)
    await _chain_all(hub)
    report = await verify_chain(hub.uow, settle=timedelta(0), clock=hub.clock)
    assert report.ok, report.broken
    async with hub.engine.connect() as conn:
        tables = {r.record_table for r in await conn.execute(select(evidence_chain))}
        blob = (await conn.execute(select(statement_blobs).where(
            statement_blobs.c.seq == 1))).mappings().one()
    assert {"recon_statements", "recon_runs"} <= tables
    tampered = bytearray(blob["data"])
    tampered[100] ^= 0x01
    async with hub.engine.begin() as conn:
        await conn.execute(update(statement_blobs).where(
            statement_blobs.c.statement_pk == blob["statement_pk"],
            statement_blobs.c.seq == 1).values(data=bytes(tampered)))
    report = await verify_chain(hub.uow, settle=timedelta(0), clock=hub.clock)
    assert report.broken is not None and "recon_statements" in report.broken
    assert "statement bytes were altered" in report.broken


async def test_audit_verify_finds_an_altered_run_manifest(
        hub: Hub, recon: ReconciliationService) -> None:
    r = await recon.run("fake", DAY, statement([record()]))
    await _chain_all(hub)
    async with hub.engine.begin() as conn:
        await conn.execute(update(recon_runs).where(recon_runs.c.pk == r.pk).values(
            verdict="balanced", manifest=r.summary_bytes.decode().replace("balanced",
                                                                          "discrepancies")))
    report = await verify_chain(hub.uow, settle=timedelta(0), clock=hub.clock)
    assert report.broken is not None and f"recon_runs pk {r.pk}" in report.broken


async def test_a_superseded_run_still_verifies(hub: Hub, recon: ReconciliationService) -> None:
    await recon.run("fake", DAY, statement([record()]))
    await _chain_all(hub)
    await recon.run("fake", DAY, statement([record(), line(1, "1.00", kind="fee")]))
    await _chain_all(hub)
    report = await verify_chain(hub.uow, settle=timedelta(0), clock=hub.clock)
    assert report.ok, report.broken


async def test_backoffice_lists_runs_items_and_cases(
        hub: Hub, recon: ReconciliationService, client: httpx.AsyncClient,
        auth: dict[str, str]) -> None:
    await add_payment(hub.uow, "P-1")
    await add_payment(hub.uow, "P-2")
    r1 = await recon.run("fake", DAY, statement([record(), line(1, e2e="P-1"),
                                                 line(2, "3.00")]))
    r2 = await recon.run("fake", DAY + timedelta(days=1), statement([record(day="2026-12-02")]))
    got = await client.get("/v1/backoffice/reconciliation/runs", headers=auth,
                           params={"limit": 1})
    assert got.status_code == 200
    page = got.json()
    assert [r["run_id"] for r in page["runs"]] == [r2.run_id]
    nxt = await client.get("/v1/backoffice/reconciliation/runs", headers=auth,
                           params={"limit": 1, "before": page["next_before"]})
    assert [r["run_id"] for r in nxt.json()["runs"]] == [r1.run_id]
    by_date = await client.get("/v1/backoffice/reconciliation/runs", headers=auth,
                               params={"rail": "fake", "date": "2026-12-01"})
    assert [r["run_id"] for r in by_date.json()["runs"]] == [r1.run_id]
    detail = (await client.get(f"/v1/backoffice/reconciliation/runs/{r1.run_id}",
                               headers=auth)).json()
    assert detail["summary"]["verdict"] == "discrepancies"
    assert detail["manifest"]["inputs"]["statement_sha256"] == r1.summary["statement_sha256"]
    items = (await client.get(f"/v1/backoffice/reconciliation/runs/{r1.run_id}/items",
                              headers=auth, params={"limit": 2})).json()
    assert [i["kind"] for i in items["items"]] == ["matched", "unknown_line"]
    rest = (await client.get(f"/v1/backoffice/reconciliation/runs/{r1.run_id}/items",
                             headers=auth, params={"after": items["next_after"]})).json()
    assert [i["subject"] for i in rest["items"]] == ["P-2"]
    cases = (await client.get("/v1/backoffice/reconciliation/cases", headers=auth,
                              params={"kind": "unknown_line", "rail": "fake"})).json()
    assert [c["subject"] for c in cases["cases"]] == ["line:S1#2"]
    assert cases["cases"][0]["amount"] == {"amount": "3.00", "currency": "MYR"}
    assert cases["cases"][0]["state"] == "open" and cases["cases"][0]["priority"] == "normal"


@pytest.mark.parametrize("url", [
    "/v1/backoffice/reconciliation/runs?date=2026-13-01",
    "/v1/backoffice/reconciliation/runs?before=0",
    "/v1/backoffice/reconciliation/runs?rail=no%20such",
    "/v1/backoffice/reconciliation/cases?state=pending",
    "/v1/backoffice/reconciliation/cases?kind=weird",
    "/v1/backoffice/reconciliation/runs/not-a-run/items",
    "/v1/backoffice/reconciliation/runs/0123456789abcdef0123/items?kind=nope",
])
async def test_bad_filters_are_problems(client: httpx.AsyncClient, auth: dict[str, str],
                                        recon: ReconciliationService, url: str) -> None:
    got = await client.get(url, headers=auth)
    assert got.status_code == 422
    assert got.headers["content-type"].startswith("application/problem+json")
    assert got.json()["code"] == "schema_violation"


async def test_an_unknown_run_is_not_found_and_the_lists_need_a_token(
        client: httpx.AsyncClient, auth: dict[str, str], recon: ReconciliationService) -> None:
    got = await client.get("/v1/backoffice/reconciliation/runs/0123456789abcdef0123",
                           headers=auth)
    assert got.status_code == 404 and got.json()["code"] == "not_found"
    assert (await client.get("/v1/backoffice/reconciliation/cases")).status_code == 401
    doc = (await client.get("/openapi.json")).json()
    assert {"/v1/backoffice/reconciliation/runs", "/v1/backoffice/reconciliation/runs/{run_id}",
            "/v1/backoffice/reconciliation/runs/{run_id}/items",
            "/v1/backoffice/reconciliation/cases"} <= set(doc["paths"])
