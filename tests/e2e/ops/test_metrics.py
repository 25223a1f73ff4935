"""Metrics scraped from real processes: `gateway serve --workers 2` (any worker answers with
the sum over both) and a separate `gateway dispatch --metrics-port`; the figures move with
signed traffic and the work the dispatcher does."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.simulation import free_port
from tests.support.partners import TestPartner
from tests.support.processes import Dispatch, Server, gateway_env

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    resp = httpx.get(url, timeout=10)
    assert resp.status_code == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(resp.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_for(url: str, check, timeout: float = 60) -> Samples:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url)
        if check(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.3)


def test_two_workers_and_a_dispatcher_are_scraped_and_move(
        ops_instance: tuple[Path, dict[str, int]], db_url: str) -> None:
    instance, _ports = ops_instance
    env = gateway_env(instance, db_url, GATEWAY_DISPATCH_IN_SERVE="false",
                      GATEWAY_METRICS_CACHE_SECONDS="0", GATEWAY_DISPATCH_STOP_GRACE_SECONDS="1")
    partner = TestPartner.from_registry(instance / "partners.toml", "ID-BPJSTK")
    server = Server(env, instance, workers=2)
    metrics_port = free_port()
    dispatch: Dispatch | None = None
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for _ in range(20):
                body, headers = partner.signed(partner.envelope(
                    sent_at=datetime.now(UTC), correlation_id=f"KLM-{uuid.uuid4().hex[:8]}"))
                assert http.post("/v1/messages", content=body, headers=headers
                                 ).status_code == 202
            for _ in range(3):
                body, headers = partner.signed(partner.envelope(sent_at=datetime.now(UTC)))
                headers["X-JWS-Signature"] = headers["X-JWS-Signature"][:-6] + "AAAAAA"
                assert http.post("/v1/messages", content=body, headers=headers
                                 ).status_code == 401
        # Several scrapes land on either worker; each reports the sum over both.
        for _ in range(4):
            s = scrape(server.url + "/metrics")
            assert value(s, "px_intake_messages_total", partner="ID-BPJSTK",
                         outcome="accepted", code="ok") == 20
            assert value(s, "px_intake_messages_total", partner="other", outcome="refused",
                         code="signature_invalid") == 3
            assert value(s, "px_http_request_duration_seconds_count", route="/v1/messages",
                         method="POST", status="202") == 20
            assert value(s, "px_outbox_depth", destination="hub", kind="process_inbound") == 20
            assert value(s, "px_evidence_chain_lag_records") == 20  # no chainer runs yet

        dispatch = Dispatch(env, instance, metrics_port=metrics_port)
        dispatcher_url = f"http://127.0.0.1:{metrics_port}/metrics"
        d = wait_for(dispatcher_url, lambda s: value(
            s, "px_outbox_delivery_seconds_count", destination="hub",
            kind="process_inbound") >= 20 and value(
            s, "px_outbox_retries_total", destination="ID-BPJSTK", kind="deliver") > 0)
        assert value(d, "px_outbox_delivery_seconds_count", destination="hub",
                     kind="process_inbound") == 20
        # The claim.status replies go to a partner endpoint where nothing listens: retried.
        assert value(d, "px_outbox_retries_total", destination="ID-BPJSTK", kind="deliver") > 0
        assert ("px_circuit_open", frozenset({("destination", "ID-BPJSTK")})) in d

        s = wait_for(server.url + "/metrics", lambda s: value(
            s, "px_outbox_depth", destination="hub", kind="process_inbound") == 0
            and value(s, "px_evidence_chain_lag_records") == 0)
        assert value(s, "px_outbox_depth", destination="hub", kind="process_inbound") == 0
        assert value(s, "px_outbox_depth", destination="ID-BPJSTK", kind="deliver") > 0
        assert value(s, "px_evidence_chain_lag_records") == 0  # the dispatcher's chainer ran
        # Database gauges come from the serve process only, never from the dispatcher.
        assert not any(name == "px_outbox_depth" for name, _ in d)
    finally:
        if dispatch is not None:
            dispatch.stop()
        server.stop()
