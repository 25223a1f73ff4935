"""Labels come only from closed sets: anything unknown is reported as "other"."""

from __future__ import annotations

from prometheus_client import REGISTRY

from gateway import errors
from gateway.observability.http import request_id_of
from gateway.observability.labels import OTHER, PROBLEM_CODES, closed
from gateway.observability.metrics import Observer, http_labels


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_closed_keeps_known_values_and_reports_others() -> None:
    assert closed("ID-BPJSTK", {"ID-BPJSTK"}) == "ID-BPJSTK"
    assert closed("XX-NEW", {"ID-BPJSTK"}) == OTHER
    assert closed(None, {"ID-BPJSTK"}) == OTHER


def test_problem_codes_are_every_code_of_the_error_tree_and_the_web_layer() -> None:
    for cls in (errors.AuthError, errors.ForbiddenError, errors.InvalidMessageError,
                errors.ConflictError, errors.RateLimitedError, errors.UnavailableError):
        assert cls.codes <= PROBLEM_CODES
    assert {"not_found", "method_not_allowed", "internal_error", "http_error"} <= PROBLEM_CODES
    assert "3201145403910002" not in PROBLEM_CODES


def test_intake_labels_close_partner_and_code() -> None:
    observer = Observer(partners={"ID-BPJSTK"})
    before = _sample("px_intake_messages_total", partner=OTHER, outcome="refused", code=OTHER)
    ok_before = _sample("px_intake_messages_total", partner="ID-BPJSTK", outcome="accepted",
                        code="ok")
    observer.intake("ZZ-UNKNOWN", "made_up_code")
    observer.intake(None, "also/not-a-code")
    observer.intake("ID-BPJSTK", None)
    assert _sample("px_intake_messages_total", partner=OTHER, outcome="refused",
                   code=OTHER) == before + 2
    assert _sample("px_intake_messages_total", partner="ID-BPJSTK", outcome="accepted",
                   code="ok") == ok_before + 1
    assert _sample("px_intake_messages_total", partner="ZZ-UNKNOWN", outcome="refused",
                   code="made_up_code") == 0


def test_outbox_labels_close_destination_and_kind() -> None:
    observer = Observer(destinations={"hub", "merchantrade"}, kinds={"payout"})
    before = _sample("px_outbox_retries_total", destination=OTHER, kind=OTHER)
    observer.retried("PAY-2026-0001", "some_kind")
    assert _sample("px_outbox_retries_total", destination=OTHER, kind=OTHER) == before + 1
    observer.delivered("merchantrade", "payout", 1.5)
    assert _sample("px_outbox_delivery_seconds_count", destination="merchantrade",
                   kind="payout") >= 1


def test_circuit_gauge_covers_known_destinations_and_goes_back_to_zero() -> None:
    observer = Observer(destinations={"NP-FEB", "merchantrade"})
    observer.circuits(["NP-FEB"])
    assert _sample("px_circuit_open", destination="NP-FEB") == 1
    assert _sample("px_circuit_open", destination="merchantrade") == 0
    observer.circuits([])
    assert _sample("px_circuit_open", destination="NP-FEB") == 0


def test_http_labels_use_the_route_template_or_other() -> None:
    assert http_labels("/v1/receipts/{message_id}", "GET", 200) == (
        "/v1/receipts/{message_id}", "GET", "200")
    assert http_labels(None, "GET", 404) == (OTHER, "GET", "404")
    assert http_labels("/livez", "BREW", 405) == ("/livez", OTHER, "405")


def test_request_id_is_the_callers_plain_token_or_a_new_one() -> None:
    assert request_id_of([(b"x-request-id", b"abc-123.x:y_z")]) == "abc-123.x:y_z"
    for bad in (b"has space", b"line\nbreak", b"x" * 129, b"", "é".encode()):
        made = request_id_of([(b"x-request-id", bad)])
        assert len(made) == 32 and made != bad.decode("utf-8", "replace")
    assert request_id_of([]) != request_id_of([])
