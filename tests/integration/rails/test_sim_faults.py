"""The shared fault machinery: the JSON admin API, next-N and seeded probabilistic rules."""

from __future__ import annotations

import httpx
import pytest

from adapters.rails.merchantrade import MerchantradeRail
from adapters.rails.merchantrade.simulator import MerchantradeSimulator
from adapters.simulation import Fault, Faults
from gateway.errors import OutcomeUnknownError
from tests.support.rails import payout


def test_next_n_fires_exactly_n_times() -> None:
    faults = Faults(seed=1)
    faults.next(Fault.error_before, 2, path="/v1")
    fired = [faults.draw(Fault.error_before, "/v1/payouts", "POST") for _ in range(4)]
    assert [r is not None for r in fired] == [True, True, False, False]
    assert faults.draw(Fault.error_before, "/other", "POST") is None


def test_probabilistic_rules_are_reproducible() -> None:
    def run(seed: int) -> list[bool]:
        faults = Faults(seed=seed)
        faults.add(Fault.reset_after, rate=0.3)
        return [faults.draw(Fault.reset_after, "/", "GET") is not None for _ in range(200)]

    first = run(7)
    assert first == run(7)
    assert 30 < sum(first) < 90  # about 30 % of 200


@pytest.mark.anyio
async def test_faults_armed_over_http(
    mt_rail: MerchantradeRail, mt_sim: MerchantradeSimulator, rail_http: httpx.AsyncClient
) -> None:
    armed = await rail_http.post(
        mt_sim.url + "/_sim/faults",
        json=[{"fault": "error_after", "count": 1, "status": 502, "method": "POST"}],
    )
    assert armed.status_code == 201 and armed.json()["armed"][0]["fault"] == "error_after"
    with pytest.raises(OutcomeUnknownError):
        await mt_rail.submit(rail_http, [payout(1)])
    assert (await rail_http.get(mt_sim.url + "/_sim/faults")).json()["fired"] == {"error_after": 1}
    bad = await rail_http.post(mt_sim.url + "/_sim/faults", json={"fault": "meteor"})
    assert bad.status_code == 422
    advanced = await rail_http.post(mt_sim.url + "/_sim/advance", params={"steps": 2})
    assert advanced.json() == {"changed": 2}
    ledger = (await rail_http.get(mt_sim.url + "/_sim/ledger")).json()
    assert ledger["px-pay-1"]["state"] == "paid" and ledger["px-pay-1"]["paid_count"] == 1
    await rail_http.delete(mt_sim.url + "/_sim/faults")
    assert (await rail_http.get(mt_sim.url + "/_sim/faults")).json()["armed"] == []
