"""A real ``gateway serve`` with tracing on exports OTLP/HTTP to a loopback receiver: the
request's server span, the dispatcher's task spans, the outbound delivery's client span whose
context the partner received as ``traceparent``, and none of the test's personal data, ids from
paths, keys or tokens anywhere in what it sent. SIGTERM flushes what is buffered.

The receiver and the partner's endpoint are small ``http.server``s in this process; the
partner answers 503, so the hub's delivery is attempted (and retried later) without a receipt.
"""

from __future__ import annotations

import gzip
import json
import signal
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from adapters.simulation import free_port
from gateway.runtime.bootstrap import dev_key_path
from tests.support.partners import TestPartner, claim_payload
from tests.support.processes import Server, gateway_env

pytestmark = pytest.mark.e2e

NATIONAL_ID = "3201145403910002"
SERVER, CLIENT = 2, 3  # opentelemetry.proto Span.SpanKind


class _Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, status: int) -> None:
        self.status = status
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Recorder

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        with self.server.lock:
            self.server.requests.append((self.path, dict(self.headers.items()), body))
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _start(port: int, status: int) -> _Recorder:
    recorder = _Recorder(port, status)
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    return recorder


def _value(v: AnyValue) -> object:
    which = v.WhichOneof("value")
    return getattr(v, which) if which else None


def _spans(requests: list[tuple[str, dict[str, str], bytes]]) -> list[dict[str, Any]]:
    found = []
    for path, _, body in requests:
        assert path == "/v1/traces"
        export = ExportTraceServiceRequest.FromString(body)
        for rs in export.resource_spans:
            resource = {a.key: _value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    found.append({"name": s.name, "kind": s.kind, "trace": s.trace_id.hex(),
                                  "span": s.span_id.hex(), "parent": s.parent_span_id.hex(),
                                  "attributes": {a.key: _value(a.value) for a in s.attributes},
                                  "status": s.status.code, "resource": resource})
    return found


def test_serve_exports_request_task_and_delivery_spans_with_traceparent(
        ops_instance: tuple[Path, dict[str, int]], db_url: str) -> None:
    instance, ports = ops_instance
    collector = _start(free_port(), 200)
    partner_endpoint = _start(ports["ID-BPJSTK"], 503)
    # Nothing is exported on a schedule (10 min) nor by batch size: what arrives was flushed
    # by the SIGTERM shutdown.
    env = gateway_env(instance, db_url, GATEWAY_OTEL_ENABLED="true", GATEWAY_DRAIN_SECONDS="0",
                      GATEWAY_DISPATCH_STOP_GRACE_SECONDS="1",
                      OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{collector.server_port}",
                      OTEL_SERVICE_NAME="px-e2e", OTEL_BSP_SCHEDULE_DELAY="600000",
                      OTEL_BSP_MAX_EXPORT_BATCH_SIZE="2048", OTEL_BSP_MAX_QUEUE_SIZE="2048")
    partner = TestPartner.from_registry(instance / "partners.toml", "ID-BPJSTK")
    envelope = partner.envelope(sent_at=datetime.now(UTC), payload=claim_payload())
    body, headers = partner.signed(envelope)
    bearer = partner.token(now=datetime.now(UTC))
    server = Server(env, instance)
    stopped = False
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.post("/v1/messages", content=body, headers=headers).status_code == 202
            assert http.get(f"/v1/receipts/{envelope['id']}", headers=bearer).status_code == 200
            assert http.get(f"/v1/tracking/{NATIONAL_ID}", params={"nik": NATIONAL_ID},
                            headers=partner.token(now=datetime.now(UTC))).status_code in (
                200, 404)
        deadline = time.monotonic() + 30  # the embedded dispatcher delivers claim.status
        while time.monotonic() < deadline and not partner_endpoint.requests:
            time.sleep(0.1)
        assert partner_endpoint.requests, server.log.read_text()[-2000:]
        assert not collector.requests  # buffered until the process stops
        server.stop()  # SIGTERM: the lifespan's shutdown flushes the batch processor
        stopped = server.proc.returncode != -signal.SIGKILL  # not killed after the timeout
    finally:
        server.stop()
        partner_endpoint.shutdown()
        partner_endpoint.server_close()
        collector.shutdown()
        collector.server_close()
    assert stopped, server.log.read_text()[-2000:]
    spans = _spans(collector.requests)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        by_name.setdefault(s["name"], []).append(s)

    intake = by_name["POST /v1/messages"][0]
    assert intake["kind"] == SERVER and intake["resource"]["service.name"] == "px-e2e"
    assert intake["attributes"]["http.route"] == "/v1/messages"
    assert 202 in (intake["attributes"].get("http.status_code"),
                   intake["attributes"].get("http.response.status_code"))
    assert "GET /v1/receipts/{message_id}" in by_name
    assert "GET /v1/tracking/{correlation_id}" in by_name
    assert not any(s["name"].startswith("GET /healthz") for s in spans)  # readiness polls
    assert any(s["parent"] == intake["span"] and "db.statement" in s["attributes"]
               for s in spans)

    task = by_name["outbox process_inbound"][0]
    assert task["attributes"]["px.outbox.destination"] == "hub" and task["parent"] == ""
    deliver = by_name["outbox deliver"][0]
    assert deliver["attributes"]["px.outbox.destination"] == "ID-BPJSTK"
    assert deliver["status"] == 2  # STATUS_CODE_ERROR: the partner answered 503
    call = next(s for s in spans if s["kind"] == CLIENT and s["parent"] == deliver["span"]
                and "db.system" not in s["attributes"])
    assert call["attributes"].get("server.port", call["attributes"].get("net.peer.port")
                                  ) == ports["ID-BPJSTK"]
    # The partner received the client span's context: W3C traceparent 00-trace-span-flags.
    sent = {h.lower(): v for h, v in partner_endpoint.requests[0][1].items()}
    version, trace_id, parent_id, _flags = sent["traceparent"].split("-")
    assert (version, trace_id, parent_id) == ("00", call["trace"], call["span"])

    exported = b"".join(b for _, _, b in collector.requests)
    partner_key = json.loads(dev_key_path(instance / "partners.toml", "ID-BPJSTK").read_text())
    hub_key = json.loads((instance / "hub.jwk.json").read_text())
    secrets = {
        "national id": NATIONAL_ID, "passport": "C1234567", "phone": "6281234567890",
        "account": "MT-0042", "worker name": "Siti Rahayu", "message id": envelope["id"],
        "partner bearer token": bearer["Authorization"][7:],
        "message signature": headers["X-JWS-Signature"].split("..")[1],
        "partner private key": partner_key["d"], "hub private key": hub_key["d"],
    }
    leaked = [name for name, value in secrets.items() if value.encode() in exported]
    assert not leaked, leaked
