"""Traces through the real app on a real database, exported to the SDK's in-memory exporter
through the same batch processor and redaction as production: server spans named by route
template, database statements as their children, the dispatcher's task spans, and none of the
test's personal data, ids from paths, tokens or bodies in any attribute."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import text

from gateway.app import create_app
from gateway.composition import Hub, build_hub
from gateway.config import Settings
from gateway.observability.tracing import ALLOWED_ATTRIBUTES, TracingConfig, start_tracing
from tests.support.partners import TestPartner, claim_payload

pytestmark = pytest.mark.anyio

NATIONAL_ID = "3201145403910002"
ACCOUNT = "MT-0042"


@dataclass
class Traced:
    hub: Hub
    client: httpx.AsyncClient
    exporter: InMemorySpanExporter

    def spans(self) -> tuple[ReadableSpan, ...]:
        self.hub.tracing.provider.force_flush()  # type: ignore[attr-defined]
        return self.exporter.get_finished_spans()


@pytest.fixture
async def traced(settings: Settings, clock: datetime) -> AsyncIterator[Traced]:
    exporter = InMemorySpanExporter()
    tracing = start_tracing(TracingConfig(enabled=True), "serve", exporter=exporter)
    hub = build_hub(settings, clock=clock, tracing=tracing)  # type: ignore[arg-type]
    app = create_app(hub=hub, background_jobs=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
            yield Traced(hub, c, exporter)
    finally:
        await hub.close()
        tracing.shutdown()


def _texts(span: ReadableSpan) -> Iterator[str]:
    yield span.name
    yield str(span.status.description or "")
    for key, value in (span.attributes or {}).items():
        yield f"{key}={value!r}"
    for event in span.events:
        yield event.name
        yield from (f"{k}={v!r}" for k, v in (event.attributes or {}).items())


def _leaks(spans: tuple[ReadableSpan, ...], secrets: dict[str, str]) -> dict[str, str]:
    return {name: text for span in spans for text in _texts(span)
            for name, value in secrets.items() if value in text}


async def test_a_signed_claim_is_a_server_span_named_by_route_with_its_statements(
        traced: Traced, bpjstk: TestPartner) -> None:
    envelope = bpjstk.envelope(payload=claim_payload())
    body, headers = bpjstk.signed(envelope)
    accepted = await traced.client.post("/v1/messages", content=body, headers=headers)
    assert accepted.status_code == 202, accepted.text
    receipt = await traced.client.get(f"/v1/receipts/{envelope['id']}",
                                      headers=bpjstk.token())
    assert receipt.status_code == 200
    tracking = await traced.client.get(f"/v1/tracking/{NATIONAL_ID}",
                                       params={"nik": NATIONAL_ID}, headers=bpjstk.token())
    assert tracking.status_code in (200, 404)
    assert (await traced.client.get("/livez")).status_code == 200

    spans = traced.spans()
    servers = {s.name: s for s in spans if s.kind is SpanKind.SERVER}
    assert set(servers) == {"POST /v1/messages", "GET /v1/receipts/{message_id}",
                            "GET /v1/tracking/{correlation_id}"}  # probes are not traced
    intake = servers["POST /v1/messages"]
    assert intake.attributes is not None
    assert intake.attributes["http.route"] == "/v1/messages"
    status = intake.attributes.get("http.response.status_code",
                                   intake.attributes.get("http.status_code"))
    assert status == 202
    assert intake.status.status_code is not StatusCode.ERROR
    assert intake.resource.attributes["service.name"] == "px-gateway"
    statements = [s for s in spans if s.parent is not None
                  and s.parent.span_id == intake.context.span_id
                  and s.attributes and "db.statement" in s.attributes]
    assert statements, [s.name for s in spans]
    assert any("INSERT INTO messages" in str(s.attributes["db.statement"])  # type: ignore[index]
               for s in statements)
    for span in spans:
        assert set(span.attributes or {}) <= ALLOWED_ATTRIBUTES, span.name

    secrets = {"national id": NATIONAL_ID, "account": ACCOUNT, "passport": "C1234567",
               "phone": "6281234567890", "name": "Siti Rahayu",
               "message id": envelope["id"], "signature": headers["X-JWS-Signature"][-20:],
               "token": bpjstk.token()["Authorization"][-20:], "body": body.decode()[:40]}
    assert not _leaks(spans, secrets)


async def test_the_dispatchers_task_is_a_span_with_kind_destination_pk_and_attempt(
        traced: Traced, bpjstk: TestPartner) -> None:
    body, headers = bpjstk.signed(bpjstk.envelope(payload=claim_payload()))
    assert (await traced.client.post("/v1/messages", content=body, headers=headers)
            ).status_code == 202
    before = {s.context.span_id for s in traced.spans()}
    assert await traced.hub.dispatcher().run_once() == 1
    spans = [s for s in traced.spans() if s.context.span_id not in before]
    task = next(s for s in spans if s.name == "outbox process_inbound")
    assert task.parent is None  # the root of its own trace
    assert task.attributes is not None
    assert {k: task.attributes[k] for k in ("px.outbox.kind", "px.outbox.destination",
                                            "px.outbox.attempt", "px.outbox.tasks")} == {
        "px.outbox.kind": "process_inbound", "px.outbox.destination": "hub",
        "px.outbox.attempt": 1, "px.outbox.tasks": 1}
    assert isinstance(task.attributes["px.outbox.pk"], int)
    assert task.status.status_code is not StatusCode.ERROR
    children = [s for s in spans if s.parent is not None
                and s.parent.span_id == task.context.span_id]
    assert any("db.statement" in (s.attributes or {}) for s in children)
    assert not _leaks(tuple(spans), {"national id": NATIONAL_ID, "account": ACCOUNT})


async def test_statements_outside_any_span_start_no_trace(traced: Traced) -> None:
    # What the dispatcher's polling and housekeeping do: many statements a second, no trace.
    async with traced.hub.uow() as uow:
        await uow.conn.execute(text("SELECT 1"))
        await uow.commit()
    assert traced.spans() == ()
    with traced.hub.tracing.span("outbox test", {"px.outbox.kind": "test"}):
        async with traced.hub.uow() as uow:
            await uow.conn.execute(text("SELECT 1"))
    names = [s.name for s in traced.spans()]
    assert "outbox test" in names and len(names) >= 2, names
