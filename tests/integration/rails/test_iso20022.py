"""ISO 20022 adapter against the bank simulator: pain.001 batches, pain.002, camt.053."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import httpx
import pytest
from lxml import etree

from adapters.rails import _hmac
from adapters.rails.iso20022 import Iso20022Rail
from adapters.rails.iso20022.pain import PAIN001_NS, Debtor, build_pain001, message_id
from adapters.rails.iso20022.simulator import Iso20022Simulator
from adapters.simulation import Fault
from gateway.errors import (
    AuthError,
    OutcomeUnknownError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from gateway.ports.rail import PayoutState
from tests.support.rails import CALLBACK_SECRET, CallbackSink, payout

pytestmark = pytest.mark.anyio


def test_pain001_shape_and_deterministic_msgid() -> None:
    batch = [payout(1), payout(2, account="123-456")]
    now = datetime(2025, 1, 31, 9, 0, tzinfo=UTC)
    msg_id, xml = build_pain001(batch, Debtor("PERKESO", "ACC", "PERKMYKLXXX"), now, now.date())
    assert msg_id == message_id(["px-pay-2", "px-pay-1"]) and len(msg_id) == 35
    root = etree.fromstring(xml)
    ns = {"p": PAIN001_NS}
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:MsgId", namespaces=ns) == msg_id
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs", namespaces=ns) == "2"
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=ns) == "500.00"
    assert len(root.findall("p:CstmrCdtTrfInitn/p:PmtInf", namespaces=ns)) == 1
    txs = root.findall(".//p:CdtTrfTxInf", namespaces=ns)
    assert [t.findtext("p:PmtId/p:EndToEndId", namespaces=ns) for t in txs] == [
        "px-pay-1",
        "px-pay-2",
    ]
    amt = txs[1].find("p:Amt/p:InstdAmt", namespaces=ns)
    assert amt is not None and (amt.text, amt.get("Ccy")) == ("250.00", "MYR")
    assert txs[1].findtext("p:CdtrAcct/p:Id/p:Othr/p:Id", namespaces=ns) == "123-456"
    assert txs[1].findtext("p:Cdtr/p:Nm", namespaces=ns) == "Siti Aminah"
    assert txs[1].findtext("p:RmtInf/p:Ustrd", namespaces=ns) == "PERKESO benefit 2"


async def test_batch_submit_status_and_idempotency(
    iso_rail: Iso20022Rail, iso_sim: Iso20022Simulator, rail_http: httpx.AsyncClient
) -> None:
    batch = [payout(1), payout(2, account="FAIL-9"), payout(3)]
    statuses = await iso_rail.submit(rail_http, batch)
    assert [s.idempotency_key for s in statuses] == ["px-pay-1", "px-pay-2", "px-pay-3"]
    assert {s.state for s in statuses} == {PayoutState.accepted}
    assert await iso_rail.submit(rail_http, list(reversed(batch)))  # same MsgId: deduplicated
    # A different batch reusing one EndToEndId with the same content is not paid again.
    await iso_rail.submit(rail_http, [payout(1), payout(4)])
    iso_sim.advance(steps=2)
    paid = await iso_rail.status(rail_http, "px-pay-1")
    failed = await iso_rail.status(rail_http, "px-pay-2")
    assert paid is not None and paid.state == PayoutState.paid
    assert failed is not None and (failed.state, failed.reason) == (PayoutState.failed, "AC04")
    assert await iso_rail.status(rail_http, "px-unknown") is None
    assert iso_sim.ledger() == {"px-pay-1": 1, "px-pay-2": 0, "px-pay-3": 1, "px-pay-4": 1}


async def test_reused_end_to_end_id_with_other_content_is_permanent(
    iso_rail: Iso20022Rail, iso_sim: Iso20022Simulator, rail_http: httpx.AsyncClient
) -> None:
    await iso_rail.submit(rail_http, [payout(5)])
    results = await iso_rail.submit_each(rail_http, [payout(5, amount="9.99"), payout(6)])
    assert isinstance(results[0].error, PermanentDeliveryError)
    assert results[1].status is not None
    with pytest.raises(PermanentDeliveryError):
        await iso_rail.submit(rail_http, [payout(5, amount="9.99")])
    too_long = dataclasses.replace(payout(7), idempotency_key="x" * 36)
    [result] = await iso_rail.submit_each(rail_http, [too_long])
    assert isinstance(result.error, PermanentDeliveryError)
    assert "px-pay-5" in iso_sim.ledger() and len(iso_sim.ledger()) == 2


@pytest.mark.parametrize(
    ("fault", "kwargs", "expected"),
    [
        (Fault.error_before, {"status": 503}, OutcomeUnknownError),
        (Fault.throttle, {"status": 503}, TransientDeliveryError),
        (Fault.error_before, {"status": 422}, PermanentDeliveryError),
        (Fault.reset_after, {}, OutcomeUnknownError),
        (Fault.timeout, {"seconds": 1.0}, OutcomeUnknownError),
    ],
)
async def test_batch_fault_maps_to_error_class(
    iso_rail: Iso20022Rail,
    iso_sim: Iso20022Simulator,
    rail_http: httpx.AsyncClient,
    fault: Fault,
    kwargs: dict[str, float],
    expected: type[Exception],
) -> None:
    iso_sim.faults.next(fault, **kwargs)
    with pytest.raises(expected) as err:
        await iso_rail.submit(rail_http, [payout(10), payout(11)])
    assert type(err.value) is expected
    assert len(err.value.results) == 2  # type: ignore[attr-defined]


async def test_paid_but_answered_with_error_then_status_and_resend(
    iso_rail: Iso20022Rail, iso_sim: Iso20022Simulator, rail_http: httpx.AsyncClient
) -> None:
    batch = [payout(20), payout(21)]
    iso_sim.faults.next(Fault.error_after, status=500, path="/pain001")
    with pytest.raises(OutcomeUnknownError):
        await iso_rail.submit(rail_http, batch)
    iso_sim.advance(steps=2)
    for key in ("px-pay-20", "px-pay-21"):
        status = await iso_rail.status(rail_http, key)
        assert status is not None and status.state == PayoutState.paid
    await iso_rail.submit(rail_http, batch)  # a resend anyway is deduplicated by MsgId
    assert iso_sim.ledger() == {"px-pay-20": 1, "px-pay-21": 1}


async def test_status_errors_are_transient(
    iso_rail: Iso20022Rail, iso_sim: Iso20022Simulator, rail_http: httpx.AsyncClient
) -> None:
    iso_sim.faults.next(Fault.reset_before, path="/pain002")
    with pytest.raises(TransientDeliveryError):
        await iso_rail.status(rail_http, "px-pay-1")
    iso_sim.faults.next(Fault.error_before, status=500, path="/pain002")
    with pytest.raises(TransientDeliveryError):
        await iso_rail.status(rail_http, "px-pay-1")


async def test_pain002_callbacks(
    iso_rail: Iso20022Rail,
    iso_sim: Iso20022Simulator,
    sink: CallbackSink,
    rail_http: httpx.AsyncClient,
) -> None:
    before = len(sink.snapshot())
    iso_sim.faults.next(Fault.lost_callback)  # the "accepted" push is lost
    await iso_rail.submit(rail_http, [payout(30, account="RET-1")])
    assert iso_sim.callbacks.wait_idle(5)
    iso_sim.faults.next(Fault.duplicate_callback)
    iso_sim.advance(steps=3)  # processing (twice), paid, returned
    assert iso_sim.callbacks.wait_idle(5)
    got = [iso_rail.parse_callback(h, b) for h, b in sink.snapshot()[before:]]
    assert [s.state for s in got] == [
        PayoutState.processing,
        PayoutState.processing,
        PayoutState.paid,
        PayoutState.returned,
    ]
    headers, body = sink.snapshot()[-1]
    with pytest.raises(AuthError):
        iso_rail.parse_callback(headers, body.replace(b"ACSC", b"RJCT"))
    forged = _hmac.callback_headers("not-" + CALLBACK_SECRET, body)
    with pytest.raises(AuthError):
        iso_rail.parse_callback(forged, body)


@pytest.mark.parametrize("version", ["08", "02"])
async def test_camt053_statement_of_the_day(
    iso_rail: Iso20022Rail, iso_sim: Iso20022Simulator, rail_http: httpx.AsyncClient, version: str
) -> None:
    await iso_rail.submit(rail_http, [payout(40), payout(41, account="RET-2"), payout(42, "FAIL")])
    iso_sim.advance(steps=3)
    today = iso_sim.business_day().isoformat()
    url = f"{iso_sim.url}/camt053/{today}?version={version}"
    headers = _hmac.request_headers(
        "px-test", "sim-request-secret", "GET", f"/camt053/{today}", b""
    )
    data = (await rail_http.get(url, headers=headers, timeout=5)).content
    lines = iso_rail.parse_statement(data)
    summary = sorted((x.end_to_end_id, x.credit, x.return_reason, x.amount.minor) for x in lines)
    assert summary == [
        ("px-pay-40", False, None, 25000),
        ("px-pay-41", False, None, 25000),
        ("px-pay-41", True, "AC04", 25000),  # the RET- account is closed
    ]
    iso_sim.faults.next(Fault.statement_missing)
    iso_sim.faults.next(Fault.statement_extra)
    iso_sim.faults.next(Fault.statement_duplicate)
    iso_sim.faults.next(Fault.statement_mismatch)
    day = date.fromisoformat(today)
    odd = iso_rail.parse_statement(await iso_rail.fetch_statement(rail_http, day))
    ids = [x.end_to_end_id for x in odd]
    assert "unknown-e2e-1" in ids and len(ids) == 4 and len(set(ids)) == 3
    assert odd[0].amount.minor == 25001
