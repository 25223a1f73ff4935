"""/metrics through the real app: database-state gauges at scrape time (cached), closed
labels, intake counters (the multi-process scrape: tests/e2e/ops/test_metrics.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.composition import Hub
from gateway.observability.sources import key_expiry
from gateway.observability.state import StateContext
from gateway.outbox.claiming import claim
from gateway.outbox.records import dead_letter, enqueue
from gateway.protocol.partners import PartnerRegistry
from gateway.protocol.signing import KeyRing, Signer, generate_private_jwk
from tests.support.partners import NOW, TestPartner

pytestmark = pytest.mark.anyio


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    resp = await client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(resp.text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def test_outbox_gauges_close_unknown_destinations_and_are_cached(
        client: httpx.AsyncClient, hub: Hub) -> None:
    async with hub.uow() as uow:
        for i in range(3):
            await enqueue(uow.conn, kind="deliver", destination="NP-FEB", ref=f"m{i}",
                          now=NOW - timedelta(seconds=90))
        await enqueue(uow.conn, kind="deliver", destination="XX-GONE", ref="x", now=NOW)
        await enqueue(uow.conn, kind="payout", destination="PAY-0001", ref="y", now=NOW)
        await enqueue(uow.conn, kind="made_up", destination="hub", ref="z", now=NOW)
        await uow.commit()
    [task] = [t for t in await claim(hub.uow, owner="t", now=NOW, lease=timedelta(seconds=60),
                                     limit=10) if t.ref == "x"] or [None]
    assert task is not None
    async with hub.uow() as uow:
        await dead_letter(uow.conn, task, NOW, "permanent: test")
        await uow.commit()
    hub.state_metrics.ttl = 60
    samples = await scrape(client)
    assert value(samples, "px_outbox_depth", destination="NP-FEB", kind="deliver") == 3
    assert value(samples, "px_outbox_oldest_age_seconds", destination="NP-FEB",
                 kind="deliver") == 90
    assert value(samples, "px_outbox_depth", destination="other", kind="payout") == 1
    assert value(samples, "px_outbox_depth", destination="hub", kind="other") == 1
    assert value(samples, "px_outbox_dead_letters", destination="other", kind="deliver") == 1
    assert not any("XX-GONE" in str(k) or "PAY-0001" in str(k) for k in samples)
    # Within the cache's lifetime a new task is not seen: a scrape storm costs one query.
    async with hub.uow() as uow:
        await enqueue(uow.conn, kind="deliver", destination="NP-FEB", ref="m9", now=NOW)
        await uow.commit()
    assert value(await scrape(client), "px_outbox_depth", destination="NP-FEB",
                 kind="deliver") == 3
    hub.state_metrics.ttl = 0
    assert value(await scrape(client), "px_outbox_depth", destination="NP-FEB",
                 kind="deliver") == 4


async def test_intake_http_and_chain_lag_move_with_traffic(
        client: httpx.AsyncClient, hub: Hub, bpjstk: TestPartner) -> None:
    hub.state_metrics.ttl = 0
    first = await scrape(client)
    before = value(first, "px_intake_messages_total", partner="ID-BPJSTK",
                   outcome="accepted", code="ok") or 0
    refused = value(first, "px_intake_messages_total", partner="other",
                    outcome="refused", code="signature_invalid") or 0
    body, headers = bpjstk.signed(bpjstk.envelope(sent_at=NOW))
    assert (await client.post("/v1/messages", content=body, headers=headers)).status_code == 202
    bad = {**headers, "X-JWS-Signature": headers["X-JWS-Signature"][:-4] + "AAAA"}
    assert (await client.post("/v1/messages", content=body + b" ", headers=bad)
            ).status_code == 401
    assert (await client.get("/v1/no/such/3201145403910002")).status_code == 404
    samples = await scrape(client)
    assert value(samples, "px_intake_messages_total", partner="ID-BPJSTK", outcome="accepted",
                 code="ok") == before + 1
    assert value(samples, "px_intake_messages_total", partner="other", outcome="refused",
                 code="signature_invalid") == refused + 1
    assert (value(samples, "px_http_request_duration_seconds_count", route="/v1/messages",
                  method="POST", status="202") or 0) >= 1
    assert (value(samples, "px_http_request_duration_seconds_count", route="other",
                  method="GET", status="404") or 0) >= 1
    assert not any("3201145403910002" in str(k) for k in samples)
    assert value(samples, "px_evidence_chain_lag_records") == 1
    assert value(samples, "px_outbox_depth", destination="hub", kind="process_inbound") == 1


async def test_key_expiry_days_for_keys_that_carry_exp(hub: Hub) -> None:
    from gateway.messages import partner_keys as pkeys
    from gateway.protocol.signing import public_jwk

    now = datetime(2026, 12, 1, tzinfo=UTC)
    jwk = {**generate_private_jwk("hub-2026"), "exp": int((now + timedelta(days=10)).timestamp())}
    signer = Signer("MY-PERKESO", [jwk, generate_private_jwk("hub-old")])
    source = key_expiry(signer, PartnerRegistry({}, KeyRing()))
    async with hub.engine.begin() as conn:
        readings = await source(conn, StateContext(now))
        assert [(r.labels, r.value) for r in readings] == [(("hub", "hub-2026"), 10.0)]
        # A partner key added through the admin API reports its expires_at from the table.
        await pkeys.add(conn, "ID-BPJSTK", public_jwk(generate_private_jwk("bpjstk-2027")),
                        by="ada", now=now, file_ring=KeyRing(),
                        expires_at=now + timedelta(days=30))
        readings = await source(conn, StateContext(now))
    assert [(r.labels, r.value) for r in readings] == [
        (("ID-BPJSTK", "bpjstk-2027"), 30.0), (("hub", "hub-2026"), 10.0)]


async def test_a_failing_source_hides_only_its_own_gauges_and_caches_are_per_source(
        hub: Hub) -> None:
    from gateway.observability.state import Reading, StateCollector

    calls = {"ok": 0, "slow": 0}

    async def ok(_conn, _ctx):  # noqa: ANN001, ANN202
        calls["ok"] += 1
        return [Reading("px_evidence_chain_lag_records", (), 7)]

    async def slow(_conn, _ctx):  # noqa: ANN001, ANN202
        calls["slow"] += 1
        return [Reading("px_payments", ("merchantrade", "paid"), 3)]

    async def broken(conn, _ctx):  # noqa: ANN001, ANN202
        from sqlalchemy import text
        await conn.execute(text("SELECT * FROM no_such_table"))
        return []

    collector = StateCollector(hub.uow, {"ok": ok, "slow": slow, "broken": broken},
                               lambda now: StateContext(now), ttl=0, ttls={"slow": 3600})
    await collector.refresh()
    await collector.refresh()
    names = {family.name: [s.value for s in family.samples] for family in collector.collect()}
    assert names == {"px_evidence_chain_lag_records": [7.0], "px_payments": [3.0]}
    assert calls == {"ok": 2, "slow": 1}
