"""Rail test helpers: the simulators' test secrets, a callback sink, payout instructions."""

from __future__ import annotations

import threading

from fastapi import FastAPI, Request, Response

from adapters.simulation import LoopbackServer
from gateway.money import Money
from gateway.ports.rail import PayoutInstruction

__all__ = ["CALLBACK_SECRET", "REQUEST_SECRET", "TIMEOUTS", "CallbackSink", "payout"]

REQUEST_SECRET = "sim-request-secret"
CALLBACK_SECRET = "sim-callback-secret"
# Short timeouts keep timeout faults fast; the simulator holds answers for 1 s.
TIMEOUTS = {"connect": 1.0, "read": 0.4, "write": 1.0, "pool": 1.0}


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

        self.server = LoopbackServer(app)

    @property
    def url(self) -> str:
        return self.server.url + "/callbacks"

    def snapshot(self) -> list[tuple[dict[str, str], bytes]]:
        with self._lock:
            return list(self.received)


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
