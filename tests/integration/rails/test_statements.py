"""Both rails' statements end to end: the simulators generate them from their ledgers with every
statement fault, the adapters fetch them over loopback and stream them through scan_statement.

Each fault is checked by what the gateway sees (lines, kinds, proofs), never by the
simulator's internals, so the same test stands for a real rail's file.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import httpx
import pytest
from lxml import etree

from adapters.rails._statements import sequence_of
from adapters.rails.iso20022 import Iso20022Config, Iso20022Rail
from adapters.rails.iso20022.simulator import Iso20022SimConfig, Iso20022Simulator
from adapters.rails.merchantrade import MerchantradeRail
from adapters.rails.merchantrade.simulator import MerchantradeSimulator
from adapters.simulation import Fault, Faults
from gateway.errors import TransientDeliveryError
from gateway.ports.rail import (
    BadLine,
    LineKind,
    StatementItem,
    StatementLine,
    StatementProof,
    StatementRecord,
)
from tests.support.rails import CALLBACK_SECRET, REQUEST_SECRET, TIMEOUTS, payout

pytestmark = pytest.mark.anyio

DAY = date(2026, 3, 2)
MONDAY_MORNING = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Kuala Lumpur


@dataclass
class Rail:
    """One rail under test: its adapter and its simulator (same interface for both)."""

    name: str
    adapter: MerchantradeRail | Iso20022Rail
    sim: MerchantradeSimulator | Iso20022Simulator

    async def fetch(self, http: httpx.AsyncClient, day: date = DAY) -> bytes:
        return await self.adapter.fetch_statement(http, day)

    async def items(self, http: httpx.AsyncClient, day: date = DAY) -> list[StatementItem]:
        return list(self.adapter.scan_statement(io.BytesIO(await self.fetch(http, day))))


@pytest.fixture(params=["merchantrade", "iso20022"])
async def rail(
    request: pytest.FixtureRequest, rail_http: httpx.AsyncClient
) -> Rail:
    name = request.param
    fixture = "mt" if name == "merchantrade" else "iso"
    sim = request.getfixturevalue(f"{fixture}_sim")
    sim.clock = lambda: MONDAY_MORNING
    under = Rail(name, request.getfixturevalue(f"{fixture}_rail"), sim)
    await under.adapter.submit(rail_http, [payout(1), payout(2), payout(3)])
    sim.advance(steps=2)
    return under


def lines(items: list[StatementItem], *kinds: LineKind) -> list[StatementLine]:
    wanted = set(kinds) or set(LineKind) - {LineKind.fee}
    return [i for i in items if isinstance(i, StatementLine) and i.kind in wanted]


def proofs(items: list[StatementItem]) -> dict[str, list[StatementProof]]:
    found: dict[str, list[StatementProof]] = {}
    for i in items:
        if isinstance(i, StatementProof):
            found.setdefault(i.check, []).append(i)
    return found


def record(items: list[StatementItem]) -> StatementRecord:
    first = items[0]
    assert isinstance(first, StatementRecord)
    return first


def all_hold(items: list[StatementItem]) -> bool:
    return all(p.ok for ps in proofs(items).values() for p in ps)


async def test_statement_of_the_day_proves_itself(rail: Rail, rail_http: httpx.AsyncClient) -> None:
    items = await rail.items(rail_http)
    assert record(items).business_date == DAY and record(items).sequence == sequence_of(DAY)
    assert [(x.end_to_end_id, x.kind, x.amount.minor) for x in lines(items)] == [
        (f"px-pay-{n}", LineKind.payout, 25000) for n in (1, 2, 3)
    ]
    assert all_hold(items) and proofs(items)
    assert not [i for i in items if isinstance(i, BadLine)]
    if rail.name == "merchantrade":  # the wallet's fee is an explicit line per payout
        assert [x.amount.minor for x in lines(items, LineKind.fee)] == [50, 50, 50]
    else:
        assert all(x.uetr for x in lines(items))


async def test_same_ledger_and_faults_same_bytes(rail: Rail, rail_http: httpx.AsyncClient) -> None:
    first, second = await rail.fetch(rail_http), await rail.fetch(rail_http)
    assert first == second
    rail.sim.faults.add(Fault.statement_duplicate)  # armed for every fetch: the same faults
    assert await rail.fetch(rail_http) == await rail.fetch(rail_http) != first


async def test_missing_line(rail: Rail, rail_http: httpx.AsyncClient) -> None:
    rail.sim.faults.next(Fault.statement_missing)
    items = await rail.items(rail_http)
    assert [x.end_to_end_id for x in lines(items)] == ["px-pay-1", "px-pay-2"]
    assert all_hold(items)  # a statement can be consistent and still miss a payout


async def test_extra_line(rail: Rail, rail_http: httpx.AsyncClient) -> None:
    rail.sim.faults.next(Fault.statement_extra)
    items = await rail.items(rail_http)
    assert [x.end_to_end_id for x in lines(items)][-1].startswith("unknown-")
    assert all_hold(items)


async def test_duplicated_line(rail: Rail, rail_http: httpx.AsyncClient) -> None:
    rail.sim.faults.next(Fault.statement_duplicate)
    ids = [x.end_to_end_id for x in lines(await rail.items(rail_http))]
    assert ids == ["px-pay-1", "px-pay-2", "px-pay-3", "px-pay-1"]


async def test_amount_mismatch(rail: Rail, rail_http: httpx.AsyncClient) -> None:
    rail.sim.faults.next(Fault.statement_mismatch)
    items = await rail.items(rail_http)
    assert [x.amount.minor for x in lines(items)] == [25001, 25000, 25000]
    assert all_hold(items)


async def test_currency_mismatch(rail: Rail, rail_http: httpx.AsyncClient) -> None:
    rail.sim.faults.next(Fault.statement_currency_mismatch)
    items = await rail.items(rail_http)
    assert [x.amount.currency for x in lines(items)] == ["IDR", "MYR", "MYR"]
    assert all_hold(items)


async def test_balance_or_control_total_that_does_not_add_up(
    rail: Rail, rail_http: httpx.AsyncClient
) -> None:
    rail.sim.faults.next(Fault.statement_unbalanced)
    found = proofs(await rail.items(rail_http))
    check = "control_total" if rail.name == "merchantrade" else "balance"
    [failed] = found[check]
    assert not failed.ok and "does not add up" in failed.detail


async def test_sequence_gap(rail: Rail, rail_http: httpx.AsyncClient) -> None:
    rail.sim.faults.next(Fault.statement_sequence_gap)
    assert record(await rail.items(rail_http)).sequence == sequence_of(DAY) + 1
    assert record(await rail.items(rail_http)).sequence == sequence_of(DAY)


async def test_truncated_file(rail: Rail, rail_http: httpx.AsyncClient) -> None:
    rail.sim.faults.next(Fault.statement_truncated)
    found = proofs(await rail.items(rail_http))
    assert not found["structure"][0].ok and "cut off" in found["structure"][0].detail \
        if rail.name == "merchantrade" else "breaks off" in found["structure"][0].detail
    if rail.name == "merchantrade":
        assert not found["record_count"][0].ok


async def test_late_file(rail: Rail, rail_http: httpx.AsyncClient) -> None:
    rail.sim.faults.next(Fault.statement_late, 2)
    for _ in range(2):
        with pytest.raises(TransientDeliveryError, match="not available yet"):
            await rail.fetch(rail_http)
    assert lines(await rail.items(rail_http))


@pytest.mark.parametrize("code", ["AC01", "AC04", "AC06", "AM04", "MS03"])
async def test_return_with_iso_reason(rail: Rail, rail_http: httpx.AsyncClient, code: str) -> None:
    rail.sim.return_payout("px-pay-2", code)
    items = await rail.items(rail_http)
    [back] = lines(items, LineKind.returned)
    assert (back.end_to_end_id, back.return_reason, back.credit) == ("px-pay-2", code, True)
    assert all_hold(items)
    assert rail.sim.entry("px-pay-2").state.value == "returned"  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        rail.sim.return_payout("px-pay-2", code)  # only a paid payout comes back


async def test_reversal(rail: Rail, rail_http: httpx.AsyncClient) -> None:
    rail.sim.reverse_payout("px-pay-3")
    items = await rail.items(rail_http)
    [reversed_] = lines(items, LineKind.reversal)
    assert reversed_.end_to_end_id == "px-pay-3" and reversed_.reversal and reversed_.credit
    assert all_hold(items)


async def test_return_on_a_later_day_leaves_the_earlier_statement_alone(
    rail: Rail, rail_http: httpx.AsyncClient
) -> None:
    before = await rail.fetch(rail_http)
    rail.sim.clock = lambda: datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
    rail.sim.return_payout("px-pay-1", "AC04")
    assert await rail.fetch(rail_http) == before
    later = await rail.items(rail_http, date(2026, 3, 3))
    assert [(x.end_to_end_id, x.kind) for x in lines(later)] == [("px-pay-1", LineKind.returned)]
    assert record(later).sequence == sequence_of(DAY) + 1  # continuing day to day
    assert all_hold(later)


async def test_control_endpoint_returns_a_payout(rail: Rail, rail_http: httpx.AsyncClient) -> None:
    answer = await rail_http.post(f"{rail.sim.url}/_sim/return",
                                  params={"key": "px-pay-1", "code": "AC01"}, timeout=5)
    assert answer.status_code == 200
    again = await rail_http.post(f"{rail.sim.url}/_sim/return",
                                 params={"key": "px-pay-1", "code": "AC01"}, timeout=5)
    assert again.status_code == 409
    assert (await rail_http.post(f"{rail.sim.url}/_sim/reverse", params={"key": "px-pay-2"},
                                 timeout=5)).status_code == 200
    kinds = sorted(x.kind for x in lines(await rail.items(rail_http)))
    assert kinds == sorted([LineKind.payout] * 3 + [LineKind.returned, LineKind.reversal])


# ---- iso20022 only ------------------------------------------------------------------------


def _balances(data: bytes) -> dict[str, str]:
    root = etree.fromstring(data)
    ns = {"c": root.nsmap[None]}
    return {b.findtext("c:Tp/c:CdOrPrtry/c:Cd", namespaces=ns) or "":
            b.findtext("c:Amt", namespaces=ns) or "" for b in root.iterfind(".//c:Bal", ns)}


async def test_camt053_balances_continue_day_to_day(
    iso_sim: Iso20022Simulator, iso_rail: Iso20022Rail, rail_http: httpx.AsyncClient
) -> None:
    iso_sim.clock = lambda: MONDAY_MORNING
    await iso_rail.submit(rail_http, [payout(1)])
    iso_sim.advance(steps=2)
    iso_sim.clock = lambda: datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
    await iso_rail.submit(rail_http, [payout(2, amount="100.00")])
    iso_sim.advance(steps=2)
    monday = _balances(await iso_rail.fetch_statement(rail_http, DAY))
    tuesday = _balances(await iso_rail.fetch_statement(rail_http, date(2026, 3, 3)))
    assert monday == {"OPBD": "10000000.00", "CLBD": "9999750.00"}
    assert tuesday == {"OPBD": "9999750.00", "CLBD": "9999650.00"}


@pytest.fixture
def batch_sim(faults: Faults) -> Iterator[Iso20022Simulator]:
    sim = Iso20022Simulator(Iso20022SimConfig(batch_booking=True), faults).start()
    sim.clock = lambda: MONDAY_MORNING
    yield sim
    sim.stop()


async def test_batched_entry_one_booking_many_transactions(
    batch_sim: Iso20022Simulator, rail_http: httpx.AsyncClient
) -> None:
    adapter = Iso20022Rail(Iso20022Config(base_url=batch_sim.url, api_key_id="px-test",
                                          hmac_secret=REQUEST_SECRET,
                                          callback_secret=CALLBACK_SECRET, timeouts=TIMEOUTS))
    await adapter.submit(rail_http, [payout(1), payout(2, amount="10.00"), payout(3)])
    batch_sim.advance(steps=2)
    data = await adapter.fetch_statement(rail_http, DAY)
    assert data.count(b"<Ntry>") == 1 and b"<NbOfTxs>3</NbOfTxs>" in data
    items = list(adapter.scan_statement(io.BytesIO(data)))
    batch = lines(items)
    assert [x.end_to_end_id for x in batch] == ["px-pay-1", "px-pay-2", "px-pay-3"]
    assert len({x.batch_ref for x in batch}) == 1 and batch[0].batch_ref
    [proof] = proofs(items)["batch"]
    assert proof.ok and "3 transactions add up to 510.00" in proof.detail
    assert all_hold(items)


async def test_camt054_notifications_for_a_date(
    iso_sim: Iso20022Simulator, iso_rail: Iso20022Rail, rail_http: httpx.AsyncClient
) -> None:
    iso_sim.clock = lambda: MONDAY_MORNING
    await iso_rail.submit(rail_http, [payout(1), payout(2)])
    iso_sim.advance(steps=2)
    data = await iso_rail.fetch_notifications(rail_http, DAY)
    items = list(iso_rail.scan_statement(io.BytesIO(data)))
    assert record(items).kind == "camt.054" and record(items).business_date == DAY
    assert [x.end_to_end_id for x in lines(items)] == ["px-pay-1", "px-pay-2"]
    assert "balance" not in proofs(items) and all_hold(items)
    iso_sim.faults.next(Fault.statement_late)
    with pytest.raises(TransientDeliveryError, match="camt.054 .* not available yet"):
        await iso_rail.fetch_notifications(rail_http, DAY)

