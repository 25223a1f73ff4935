"""Both rails' cancel call, adapter against simulator on loopback: a payout not yet paid is
stopped, a key never received is tombstoned (a late submit with it is answered cancelled and
never paid), a paid payout keeps its state (the rail's truth is the answer)."""

from __future__ import annotations

import httpx
import pytest

from adapters.rails.iso20022 import Iso20022Rail
from adapters.rails.iso20022.simulator import Iso20022Simulator
from adapters.rails.merchantrade import MerchantradeRail
from adapters.rails.merchantrade.simulator import MerchantradeSimulator
from gateway.ports.rail import PayoutState
from tests.support.rails import payout

pytestmark = pytest.mark.anyio

Rails = tuple[MerchantradeRail | Iso20022Rail, MerchantradeSimulator | Iso20022Simulator]


@pytest.fixture(params=["merchantrade", "iso20022"])
def rail_and_sim(request: pytest.FixtureRequest) -> Rails:
    if request.param == "merchantrade":
        return request.getfixturevalue("mt_rail"), request.getfixturevalue("mt_sim")
    return request.getfixturevalue("iso_rail"), request.getfixturevalue("iso_sim")


async def test_cancel_stops_a_payout_not_yet_paid(rail_and_sim: Rails,
                                                  rail_http: httpx.AsyncClient) -> None:
    rail, sim = rail_and_sim
    await rail.submit(rail_http, [payout(1)])
    status = await rail.cancel(rail_http, "px-pay-1")
    assert (status.idempotency_key, status.state) == ("px-pay-1", PayoutState.cancelled)
    sim.advance(steps=3)
    polled = await rail.status(rail_http, "px-pay-1")
    assert polled is not None and polled.state == PayoutState.cancelled
    assert sim.ledger() == {"px-pay-1": 0}


async def test_cancel_of_a_key_never_received_stops_a_late_submit(
        rail_and_sim: Rails, rail_http: httpx.AsyncClient) -> None:
    rail, sim = rail_and_sim
    status = await rail.cancel(rail_http, "px-pay-2")
    assert status.state == PayoutState.cancelled
    [late] = await rail.submit(rail_http, [payout(2)])
    assert late.state == PayoutState.cancelled
    sim.advance(steps=3)
    assert sim.ledger().get("px-pay-2", 0) == 0


async def test_cancel_of_a_paid_payout_answers_paid(rail_and_sim: Rails,
                                                    rail_http: httpx.AsyncClient) -> None:
    rail, sim = rail_and_sim
    await rail.submit(rail_http, [payout(3)])
    sim.advance(steps=2)
    status = await rail.cancel(rail_http, "px-pay-3")
    assert status.state == PayoutState.paid
    assert sim.ledger() == {"px-pay-3": 1}
