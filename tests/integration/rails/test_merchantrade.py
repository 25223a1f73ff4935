"""Merchantrade adapter against its simulator on loopback: signing, idempotency, faults."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from adapters.rails import _hmac
from adapters.rails.merchantrade import MerchantradeConfig, MerchantradeRail
from adapters.rails.merchantrade.simulator import MerchantradeSimulator
from adapters.simulation import Fault
from gateway.errors import (
    AuthError,
    InvalidMessageError,
    OutcomeUnknownError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from gateway.money import Money
from gateway.ports.rail import LineKind, PayoutState
from tests.support.rails import CALLBACK_SECRET, CallbackSink, payout

pytestmark = pytest.mark.anyio


async def test_submit_accepts_and_status_follows_lifecycle(
    mt_rail: MerchantradeRail, mt_sim: MerchantradeSimulator, rail_http: httpx.AsyncClient
) -> None:
    [status] = await mt_rail.submit(rail_http, [payout(1)])
    assert status.state == PayoutState.accepted
    assert status.rail_reference and status.at is not None
    mt_sim.advance(steps=2)
    polled = await mt_rail.status(rail_http, "px-pay-1")
    assert polled is not None and polled.state == PayoutState.paid
    assert await mt_rail.status(rail_http, "px-never-sent") is None


async def test_same_key_twice_is_paid_once(
    mt_rail: MerchantradeRail, mt_sim: MerchantradeSimulator, rail_http: httpx.AsyncClient
) -> None:
    first = await mt_rail.submit(rail_http, [payout(2)])
    again = await mt_rail.submit(rail_http, [payout(2)])
    assert first[0].rail_reference == again[0].rail_reference
    mt_sim.advance(steps=3)
    await mt_rail.submit(rail_http, [payout(2)])
    assert mt_sim.ledger() == {"px-pay-2": 1}


async def test_same_key_different_body_is_permanent(
    mt_rail: MerchantradeRail, mt_sim: MerchantradeSimulator, rail_http: httpx.AsyncClient
) -> None:
    await mt_rail.submit(rail_http, [payout(3)])
    with pytest.raises(PermanentDeliveryError) as err:
        await mt_rail.submit(rail_http, [payout(3, amount="999.00")])
    assert err.value.http_status == 409  # type: ignore[attr-defined]
    assert mt_sim.ledger() == {"px-pay-3": 0}


async def test_bad_request_signature_is_refused(
    mt_sim: MerchantradeSimulator, rail_http: httpx.AsyncClient
) -> None:
    wrong = MerchantradeRail(
        MerchantradeConfig(
            base_url=mt_sim.url,
            api_key_id="px-test",
            hmac_secret="not-the-secret",
            callback_secret=CALLBACK_SECRET,
        )
    )
    with pytest.raises(PermanentDeliveryError) as err:
        await wrong.submit(rail_http, [payout(4)])
    assert err.value.http_status == 401  # type: ignore[attr-defined]
    # And a hand-made request with a valid signature over a different body is refused too.
    body = b'{"amount":"1.00"}'
    headers = _hmac.request_headers("px-test", "sim-request-secret", "POST", "/v1/payouts", b"{}")
    response = await rail_http.post(
        mt_sim.url + "/v1/payouts", content=body, headers={**headers, "Idempotency-Key": "x"}
    )
    assert response.status_code == 401
    assert mt_sim.ledger() == {}


@pytest.mark.parametrize(
    ("fault", "kwargs", "expected"),
    [
        (Fault.error_before, {"status": 500}, OutcomeUnknownError),
        (Fault.error_before, {"status": 400}, PermanentDeliveryError),
        (Fault.error_after, {"status": 502}, OutcomeUnknownError),
        (Fault.reset_before, {}, OutcomeUnknownError),
        (Fault.reset_after, {}, OutcomeUnknownError),
        (Fault.timeout, {"seconds": 1.0}, OutcomeUnknownError),
        (Fault.throttle, {"status": 429}, TransientDeliveryError),
        (Fault.throttle, {"status": 503, "retry_after": 7}, TransientDeliveryError),
    ],
)
async def test_fault_maps_to_error_class(
    mt_rail: MerchantradeRail,
    mt_sim: MerchantradeSimulator,
    rail_http: httpx.AsyncClient,
    fault: Fault,
    kwargs: dict[str, float],
    expected: type[Exception],
) -> None:
    mt_sim.faults.next(fault, **kwargs)
    with pytest.raises(expected) as err:
        await mt_rail.submit(rail_http, [payout(5)])
    assert type(err.value) is expected
    if fault == Fault.throttle and kwargs.get("retry_after"):
        assert err.value.retry_after == 7  # type: ignore[attr-defined]
    # The fault was one-shot: the resend goes through and the payout exists exactly once.
    [status] = await mt_rail.submit(rail_http, [payout(5)])
    assert status.state == PayoutState.accepted
    assert mt_sim.ledger().keys() == {"px-pay-5"}


async def test_connection_refused_is_transient(rail_http: httpx.AsyncClient) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rail = MerchantradeRail(
        MerchantradeConfig(
            base_url=f"http://127.0.0.1:{port}",
            api_key_id="k",
            hmac_secret="s",
            callback_secret="c",
        )
    )
    with pytest.raises(TransientDeliveryError):
        await rail.submit(rail_http, [payout(6)])
    with pytest.raises(TransientDeliveryError):
        await rail.status(rail_http, "px-pay-6")


async def test_reset_really_is_a_dropped_connection(
    mt_sim: MerchantradeSimulator, rail_http: httpx.AsyncClient
) -> None:
    mt_sim.faults.next(Fault.reset_before)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        await rail_http.get(mt_sim.url + "/v1/payouts/x", timeout=2)


async def test_paid_but_answered_with_error_is_revealed_by_status(
    mt_rail: MerchantradeRail, mt_sim: MerchantradeSimulator, rail_http: httpx.AsyncClient
) -> None:
    mt_sim.faults.next(Fault.error_after, status=500, path="/v1/payouts", method="POST")
    with pytest.raises(OutcomeUnknownError):
        await mt_rail.submit(rail_http, [payout(7)])
    mt_sim.advance(steps=2)
    # The dispatcher asks before resending: the rail did take (and pay) the payout.
    status = await mt_rail.status(rail_http, "px-pay-7")
    assert status is not None and status.state == PayoutState.paid
    assert mt_sim.ledger() == {"px-pay-7": 1}


async def test_multi_payout_submit_keeps_every_answer(
    mt_rail: MerchantradeRail, mt_sim: MerchantradeSimulator, rail_http: httpx.AsyncClient
) -> None:
    await mt_rail.submit(rail_http, [payout(8)])
    batch = [payout(n) for n in range(9, 14)] + [payout(8, amount="1.00")]
    results = await mt_rail.submit_each(rail_http, batch)
    assert [r.idempotency_key for r in results] == [p.idempotency_key for p in batch]
    assert all(r.status is not None for r in results[:-1])
    assert isinstance(results[-1].error, PermanentDeliveryError)
    with pytest.raises(PermanentDeliveryError) as err:
        await mt_rail.submit(rail_http, batch)
    assert len(err.value.results) == len(batch)  # type: ignore[attr-defined]
    # An unknown outcome anywhere makes the whole submit "unknown": ask before resending.
    mt_sim.faults.next(Fault.error_after, status=500, method="POST")
    with pytest.raises(OutcomeUnknownError):
        await mt_rail.submit(rail_http, [payout(20), payout(21), payout(22)])


async def test_callbacks_signed_lost_and_duplicated(
    mt_rail: MerchantradeRail,
    mt_sim: MerchantradeSimulator,
    sink: CallbackSink,
    rail_http: httpx.AsyncClient,
) -> None:
    before = len(sink.snapshot())
    await mt_rail.submit(rail_http, [payout(30)])  # callback: accepted
    assert mt_sim.callbacks.wait_idle(5)  # so the next fault cannot hit this callback
    mt_sim.faults.next(Fault.lost_callback)
    mt_sim.advance()  # processing: lost
    mt_sim.faults.next(Fault.duplicate_callback)
    mt_sim.advance()  # paid: twice
    assert mt_sim.callbacks.wait_idle(5)
    got = [mt_rail.parse_callback(h, b) for h, b in sink.snapshot()[before:]]
    assert [s.state for s in got] == [PayoutState.accepted, PayoutState.paid, PayoutState.paid]
    assert mt_sim.callbacks.lost == 1
    # A tampered callback is refused.
    headers, body = sink.snapshot()[-1]
    with pytest.raises(AuthError) as err:
        mt_rail.parse_callback(headers, body.replace(b"paid", b"fail"))
    assert err.value.code == "signature_invalid"


def test_parse_callback_refuses_bad_messages(mt_rail: MerchantradeRail) -> None:
    def signed(doc: object, age: float = 0) -> tuple[dict[str, str], bytes]:
        body = json.dumps(doc).encode()
        return _hmac.callback_headers(CALLBACK_SECRET, body, time.time() - age), body

    with pytest.raises(InvalidMessageError) as err:
        mt_rail.parse_callback(*signed({"event": "payout.status", "payout": {"state": "paid"}}))
    assert err.value.code == "schema_violation"
    ok = {"event": "payout.status", "payout": {"idempotency_key": "k", "state": "paid"}}
    with pytest.raises(InvalidMessageError) as err:
        mt_rail.parse_callback(*signed(ok, age=600))
    assert err.value.code == "stale_message"
    assert mt_rail.parse_callback(*signed(ok)).state == PayoutState.paid
    with pytest.raises(AuthError) as err:
        mt_rail.parse_callback({}, b"{}")
    assert err.value.code == "signature_missing"


async def test_settlement_csv_with_anomalies(
    mt_rail: MerchantradeRail, mt_sim: MerchantradeSimulator, rail_http: httpx.AsyncClient
) -> None:
    await mt_rail.submit(
        rail_http, [payout(40), payout(41, account="FAIL-1"), payout(42, account="RET-1")]
    )
    mt_sim.advance(steps=3)
    today = mt_sim.business_day()
    lines = mt_rail.parse_statement(await mt_rail.fetch_statement(rail_http, today))
    events = [(x.line_no, x.end_to_end_id, x.status, x.kind) for x in lines]
    assert events == [
        (3, "px-pay-40", "PAID", LineKind.payout),
        (-3, "px-pay-40", "PAID", LineKind.fee),  # line 3's fee, its own line
        (4, "px-pay-41", "FAILED", LineKind.not_paid),
        (5, "px-pay-42", "PAID", LineKind.payout),
        (-5, "px-pay-42", "PAID", LineKind.fee),
        (6, "px-pay-42", "RETURNED", LineKind.returned),  # paid, then back the same day
    ]
    by_key = {line.end_to_end_id: line for line in lines if line.kind != LineKind.fee}
    assert by_key["px-pay-40"].amount == Money.parse("250.00", "MYR")
    assert by_key["px-pay-42"].return_reason == "AC04" and by_key["px-pay-40"].booked_on == today

    for fault in Fault.statement_missing, Fault.statement_extra, Fault.statement_duplicate:
        mt_sim.faults.next(fault)
    mt_sim.faults.next(Fault.statement_mismatch)
    odd = mt_rail.parse_statement(await mt_rail.fetch_statement(rail_http, today))
    keys = [line.end_to_end_id for line in odd if line.kind != LineKind.fee]
    assert "unknown-payout-1" in keys  # extra
    assert len(keys) == 5 and len(set(keys)) == 4  # the return missing, px-pay-40 twice
    first = odd[0]
    assert first.amount.minor == by_key[first.end_to_end_id].amount.minor + 1  # mismatched
