"""Fixtures for the rail tests: real simulators on 127.0.0.1 in background threads, and
``rail_http``, a plain httpx client for talking to them directly."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from adapters.rails.iso20022 import Iso20022Config, Iso20022Rail
from adapters.rails.iso20022.simulator import Iso20022SimConfig, Iso20022Simulator
from adapters.rails.merchantrade import MerchantradeConfig, MerchantradeRail
from adapters.rails.merchantrade.simulator import MerchantradeSimConfig, MerchantradeSimulator
from adapters.simulation import Faults
from tests.support.rails import CALLBACK_SECRET, REQUEST_SECRET, TIMEOUTS, CallbackSink


@pytest.fixture(scope="module")
def sink() -> Iterator[CallbackSink]:
    s = CallbackSink()
    s.server.start()
    yield s
    s.server.stop()


@pytest.fixture
def faults() -> Faults:
    return Faults(seed=20240601)


@pytest.fixture
def mt_sim(faults: Faults, sink: CallbackSink) -> Iterator[MerchantradeSimulator]:
    sim = MerchantradeSimulator(MerchantradeSimConfig(callback_url=sink.url), faults).start()
    yield sim
    sim.stop()


@pytest.fixture
def mt_rail(mt_sim: MerchantradeSimulator) -> MerchantradeRail:
    return MerchantradeRail(
        MerchantradeConfig(
            base_url=mt_sim.url,
            api_key_id="px-test",
            hmac_secret=REQUEST_SECRET,
            callback_secret=CALLBACK_SECRET,
            timeouts=TIMEOUTS,
        )
    )


@pytest.fixture
def iso_sim(faults: Faults, sink: CallbackSink) -> Iterator[Iso20022Simulator]:
    sim = Iso20022Simulator(Iso20022SimConfig(callback_url=sink.url), faults).start()
    yield sim
    sim.stop()


@pytest.fixture
def iso_rail(iso_sim: Iso20022Simulator) -> Iso20022Rail:
    return Iso20022Rail(
        Iso20022Config(
            base_url=iso_sim.url,
            api_key_id="px-test",
            hmac_secret=REQUEST_SECRET,
            callback_secret=CALLBACK_SECRET,
            timeouts=TIMEOUTS,
        )
    )


@pytest.fixture
async def rail_http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client (no base URL) for a test's own requests to the simulators."""
    async with httpx.AsyncClient() as c:
        yield c
