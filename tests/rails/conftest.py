"""Fixtures for the rail tests: real simulators on 127.0.0.1 in background threads."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from adapters.rails._sim import Faults, ThreadedServer
from adapters.rails.iso20022 import Iso20022Config, Iso20022Rail
from adapters.rails.iso20022.simulator import Iso20022SimConfig, Iso20022Simulator
from adapters.rails.merchantrade import MerchantradeConfig, MerchantradeRail
from adapters.rails.merchantrade.simulator import MerchantradeSimConfig, MerchantradeSimulator
from gateway.money import Money
from gateway.ports.rail import PayoutInstruction

REQUEST_SECRET = "sim-request-secret"
CALLBACK_SECRET = "sim-callback-secret"
# Short timeouts keep timeout faults fast; the simulator holds answers for 1 s.
TIMEOUTS = {"connect": 1.0, "read": 0.4, "write": 1.0, "pool": 1.0}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class CallbackSink:
    """A loopback HTTP endpoint that records the callbacks it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        app = FastAPI()

        @app.post("/callbacks")
        async def receive(request: Request) -> Response:
            body = await request.body()
            with self._lock:
                self.received.append((dict(request.headers), body))
            return Response(status_code=204)

        self.server = ThreadedServer(app)

    @property
    def url(self) -> str:
        return self.server.url + "/callbacks"

    def snapshot(self) -> list[tuple[dict[str, str], bytes]]:
        with self._lock:
            return list(self.received)


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
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def payout(n: int, account: str = "60123456789", amount: str = "250.00") -> PayoutInstruction:
    """Return a payout whose idempotency key derives from its payment id, as the hub's do."""
    return PayoutInstruction(
        payment_id=f"pay-{n}",
        idempotency_key=f"px-pay-{n}",
        amount=Money.parse(amount, "MYR"),
        beneficiary_name="Siti Aminah",
        provider="MTWALLET",
        account=account,
        reference=f"PERKESO benefit {n}",
    )
